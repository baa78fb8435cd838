//! Reproducibility and the cache key: everything a kernel build depends on,
//! written down as the text whose sha256 names its cache entry.
use anyhow::{Context, Result};
use std::fs;
use std::path::PathBuf;

use super::{Pin, Profile, Source, file_name, kernel_dir};
use crate::hash::sha256_hex;
use crate::run::Cmd;

/// Bump when the build recipe changes in a way the other inputs don't show.
const CACHE_FORMAT: &str = "k1os-kernel-cache-v1";

/// KBUILD_BUILD_TIMESTAMP: the pin's fixed date, always.
///
/// SOURCE_DATE_EPOCH is ignored on purpose. It usually follows the checkout's
/// last commit (the ISO does that), and since the timestamp is baked into the
/// image it is part of the cache key: honouring it rebuilt the kernel (15–20
/// minutes) for every commit although its sources had not changed. The
/// kernel's source date is the pinned tarball's: `build_epoch` in pin.toml.
pub(super) fn build_timestamp(pin: &Pin) -> String {
    format_utc(pin.build_epoch)
}

/// `date -u`'s format (`Thu Jan  1 00:00:00 UTC 1970`): what `uname -v` shows,
/// and a string the kernel's scripts can hand to `date -d`.
pub fn format_utc(epoch: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {day:>2} {:02}:{:02}:{:02} UTC {year}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `kernel/patches/*.patch`, in the order they apply.
pub fn patches() -> Result<Vec<PathBuf>> {
    let dir = kernel_dir().join("patches");
    let mut out = Vec::new();
    if dir.is_dir() {
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry
                .with_context(|| format!("listing {}", dir.display()))?
                .path();
            if path.extension().is_some_and(|e| e == "patch") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Everything the kernel build depends on, one line each: its sha256 is the
/// cache key, and the text is kept in the entry as `inputs.txt`.
pub(super) fn inputs_text(
    profile: Profile,
    pin: &Pin,
    source: &Source,
    timestamp: &str,
    compiler: &str,
) -> Result<String> {
    let mut text = format!(
        "{CACHE_FORMAT}\nprofile={profile}\nbase={}\nsource={}\npin.toml sha256={}\n",
        profile.base_config(),
        source.identity(),
        sha256_hex(pin.text.as_bytes())
    );
    for path in profile.fragments() {
        let data = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        text += &format!(
            "fragment {} sha256={}\n",
            file_name(&path),
            sha256_hex(&data)
        );
    }
    for path in patches()? {
        let data = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        text += &format!("patch {} sha256={}\n", file_name(&path), sha256_hex(&data));
    }
    text += &format!(
        "KBUILD_BUILD_TIMESTAMP={timestamp}\nKBUILD_BUILD_USER=k1os\nKBUILD_BUILD_HOST=k1os\n\
         compiler={compiler}\n"
    );
    Ok(text)
}

/// The first line of `gcc --version`: the compiler is an input (it is even
/// recorded in the .config as CONFIG_CC_VERSION_TEXT).
pub(super) fn compiler_version() -> Result<String> {
    let out = Cmd::new("gcc").arg("--version").read()?;
    Ok(out.lines().next().unwrap_or("").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_look_like_date() {
        assert_eq!(format_utc(0), "Thu Jan  1 00:00:00 UTC 1970");
        assert_eq!(format_utc(1_794_824_260), "Mon Nov 16 10:17:40 UTC 2026");
        assert_eq!(format_utc(951_782_400), "Tue Feb 29 00:00:00 UTC 2000");
    }
}

//! What stage 1 did, for stage 2 and for people: the boot record
//! (`/run/k1os/boot`, keys in `contract::boot_file`) with each phase's time,
//! and how devices and device specs are shown in it and in log lines.

use k1os_contract::choose::{Candidate, Name};
use k1os_contract::cmdline::{BootConfig, DeviceSpec};
use k1os_contract::contract::{boot_file, cstr, phase};
use k1os_contract::fmt::Bytes;
use rustix::fs::OFlags;
use ufmt::{uDisplay, uWrite, uwrite};

use crate::error::{Context, Result};
use crate::log::{self, LINE_BUF, Line};
use crate::mounts;
use crate::text::{self, Buf, Text, is_concat};

/// What stage 1 did, for `/run/k1os/boot`.
#[derive(Default)]
pub struct Record {
    /// Each phase and its time, in order; `None` after the last.
    times: [Option<(&'static str, u64)>; phase::ALL.len()],
    pub media: Option<Name>,
    pub data: Option<Name>,
}

impl Record {
    /// Starts the line of phase `name` (see [`log::phase`]) and records its time.
    pub fn phase<'a>(&mut self, buf: &'a mut Buf<LINE_BUF>, name: &'static str) -> Line<'a> {
        let (line, us) = log::phase(buf, name);
        if let Some(slot) = self.times.iter_mut().find(|t| t.is_none()) {
            *slot = Some((name, us));
        }
        line
    }

    /// `/run/k1os/boot`: `key=value` lines for stage 2 (keys in `contract::boot_file`).
    /// `verity` is the root hash the image was verified with, `off` or `none`.
    pub fn write_boot_file(&self, config: &BootConfig<'_>, verity: &[u8]) -> Result<()> {
        const STEP: &str = "write the boot record";
        let mut buf = text::buf::<1024>();
        let mut text = Text::new(&mut buf);
        let mode = if self.data.is_some() {
            "persist"
        } else {
            "ram"
        };
        // The keys of `contract::boot_file`, in the format strings (checked below).
        let _ = uwrite!(
            text,
            "mode={}\nmedia={}\ndata={}\nimage={}\ninit={}\nverity={}\n",
            mode,
            DevName(self.media.as_ref()),
            DevName(self.data.as_ref()),
            Bytes(config.image),
            Bytes(config.init),
            Bytes(verity)
        );
        for &(name, us) in self.times.iter().flatten() {
            let _ = uwrite!(text, "time_us.{}={}\n", name, us);
        }
        let path = cstr::RUN_BOOT_FILE;
        let file = mounts::open(
            STEP,
            path,
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC,
            0o644,
        )?;
        rustix::io::write(&file, text.bytes())
            .step(STEP, path.to_bytes())
            .map(drop)
    }
}

const _: () = {
    assert!(is_concat(b"mode", &[boot_file::MODE.as_bytes()]));
    assert!(is_concat(b"media", &[boot_file::MEDIA.as_bytes()]));
    assert!(is_concat(b"data", &[boot_file::DATA.as_bytes()]));
    assert!(is_concat(b"image", &[boot_file::IMAGE.as_bytes()]));
    assert!(is_concat(b"init", &[boot_file::INIT.as_bytes()]));
    assert!(is_concat(b"verity", &[boot_file::VERITY.as_bytes()]));
    assert!(is_concat(b"time_us.", &[boot_file::TIME_PREFIX.as_bytes()]));
};

/// A device as the boot record shows it: `/dev/sr0`, or `none`.
struct DevName<'a>(Option<&'a Name>);

impl uDisplay for DevName<'_> {
    fn fmt<W: uWrite + ?Sized>(
        &self,
        f: &mut ufmt::Formatter<'_, W>,
    ) -> core::result::Result<(), W::Error> {
        match self.0 {
            Some(name) => uwrite!(f, "/dev/{}", name),
            None => f.write_str("none"),
        }
    }
}

/// `iso9660 "K1OS"`: a device's filesystem and label, for messages.
pub struct Describe<'a>(pub &'a Candidate);

impl uDisplay for Describe<'_> {
    fn fmt<W: uWrite + ?Sized>(
        &self,
        f: &mut ufmt::Formatter<'_, W>,
    ) -> core::result::Result<(), W::Error> {
        f.write_str(mounts::fs_name(self.0.probe.as_ref()))?;
        match &self.0.probe {
            Some(p) if !p.label().is_empty() => uwrite!(f, " \"{}\"", Bytes(p.label())),
            _ => Ok(()),
        }
    }
}

/// `LABEL=K1OS-DATA`, `UUID=…` or the path, as the user wrote it (cut at the
/// buffer's size), for messages.
pub fn spec_text<'a>(buf: &'a mut Buf<96>, spec: &DeviceSpec<'_>) -> &'a [u8] {
    let mut text = Text::new(buf);
    let _ = uwrite!(text, "{}", spec);
    text.into_bytes()
}

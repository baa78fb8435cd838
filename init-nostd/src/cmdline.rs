//! The kernel command line (`/proc/cmdline`) as stage 1 reads it
//! (`docs/boot-contract.md`, "Kernel command line").
//!
//! Words are split the way the kernel's own `next_arg()` (`lib/cmdline.c`)
//! splits them, so stage 1 sees the same `key=value` pairs the kernel saw:
//! whitespace (the kernel's `isspace()`: `\t \n \v \f \r`, space and 0xA0)
//! separates words except inside double quotes; a word starting with `"` or a
//! value starting with `"` loses that quote and a closing quote at the end of
//! the word; there is no escape. An unterminated quote runs to the end of the
//! line. Everything after `--` is still read (the kernel hands it to `/init`,
//! which is us).
//!
//! Rules for our keys (the keys themselves are in [`contract::key`]):
//! - the last occurrence of a key wins; an occurrence with a bad or missing
//!   value is reported through `warn` and ignored (the earlier value, or the
//!   default, stays);
//! - `k1os.toram`, `k1os.verity`, `k1os.debug` and `quiet` are flags: bare
//!   means on, and they
//!   also take `1|yes|on|true` / `0|no|off|false`;
//! - `nopersist` is bare only (`k1os.mode=ram`); `persist=SPEC` takes any
//!   device spec, as `k1os.data=` does (the original only knew `/dev/…`);
//! - unknown `k1os.*` keys are reported, every other word is ignored silently.
//!
//! Nothing is copied: the config borrows from the input line.

use crate::contract::{self, key};
use crate::fmt::Bytes;
use ufmt::{Formatter, uDisplay, uWrite};

/// `k1os.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Persistent when the data partition is found, else RAM mode.
    Auto,
    /// The data partition is required.
    Persist,
    /// Never touch a data partition (`nopersist`).
    Ram,
}

impl Mode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Persist => "persist",
            Mode::Ram => "ram",
        }
    }

    fn from_value(v: &[u8]) -> Option<Self> {
        const LIST: &[&[u8]] = &[b"auto", b"persist", b"ram"];
        const NAMES: Names<{ Names::len(LIST) }> = Names::pack(LIST);
        [Mode::Auto, Mode::Persist, Mode::Ram]
            .get(NAMES.find(v)?)
            .copied()
    }
}

/// `k1os.onfail`: what to do after a fatal error has been reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFail {
    Shell,
    Reboot,
    Poweroff,
    Halt,
    /// Stay with the message on the screen until someone presses
    /// Ctrl-Alt-Del or the power button.
    Wait,
}

impl OnFail {
    pub fn as_str(&self) -> &'static str {
        match self {
            OnFail::Shell => "shell",
            OnFail::Reboot => "reboot",
            OnFail::Poweroff => "poweroff",
            OnFail::Halt => "halt",
            OnFail::Wait => "wait",
        }
    }

    fn from_value(v: &[u8]) -> Option<Self> {
        const LIST: &[&[u8]] = &[b"shell", b"reboot", b"poweroff", b"halt", b"wait"];
        const NAMES: Names<{ Names::len(LIST) }> = Names::pack(LIST);
        [
            OnFail::Shell,
            OnFail::Reboot,
            OnFail::Poweroff,
            OnFail::Halt,
            OnFail::Wait,
        ]
        .get(NAMES.find(v)?)
        .copied()
    }
}

/// A device named on the command line: `LABEL=…`, `UUID=…` or `/dev/…`.
/// The slices hold only the part after `LABEL=` / `UUID=`; a path is whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSpec<'a> {
    /// Exact label bytes (1 to 32 bytes: no filesystem we probe has longer ones).
    Label(&'a [u8]),
    /// As typed: hex digits and dashes, any case (see `probe::uuid_matches`).
    Uuid(&'a [u8]),
    /// `/dev/<name>`, whole.
    Path(&'a [u8]),
}

impl<'a> DeviceSpec<'a> {
    /// Parses `LABEL=…`, `UUID=…` or `/dev/…`; `None` if it is none of them or
    /// the part after the prefix is empty or impossible. `LABEL="MY DATA"`
    /// (quotes inside the value, as in fstab) is taken as `LABEL=MY DATA`.
    pub fn parse(v: &'a [u8]) -> Option<Self> {
        if let Some(label) = v.strip_prefix(b"LABEL=") {
            let label = match label {
                [b'"', inner @ .., b'"'] => inner,
                _ => label,
            };
            (!label.is_empty() && label.len() <= 32).then_some(DeviceSpec::Label(label))
        } else if let Some(uuid) = v.strip_prefix(b"UUID=") {
            let digits = uuid.iter().filter(|c| c.is_ascii_hexdigit()).count();
            let ok = uuid.iter().all(|&c| c.is_ascii_hexdigit() || c == b'-');
            (ok && (1..=32).contains(&digits)).then_some(DeviceSpec::Uuid(uuid))
        } else if v.len() > 5 && v.starts_with(b"/dev/") {
            Some(DeviceSpec::Path(v))
        } else {
            None
        }
    }
}

/// Everything stage 1 takes from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootConfig<'a> {
    pub mode: Mode,
    /// Default `LABEL=K1OS-DATA`.
    pub data: DeviceSpec<'a>,
    /// `None`: any device holding the image, label `K1OS` first.
    pub media: Option<DeviceSpec<'a>>,
    /// Path of the root image on the media; always starts with `/`.
    pub image: &'a [u8],
    /// Seconds to wait for devices, 0..=3600.
    pub timeout_s: u32,
    pub toram: bool,
    /// Mount the image through dm-verity when the initramfs trusts one
    /// (default on; `k1os.verity=off` mounts it unverified, with a warning).
    pub verity: bool,
    /// Validated tmpfs `size=`: `N%` (1..=100) or `N[kKmMgG]` (at least 1 MiB).
    pub ramsize: &'a [u8],
    /// Stage 2; always absolute.
    pub init: &'a [u8],
    pub debug: bool,
    pub quiet: bool,
    /// `None`: stage 1 decides (a shell if the initramfs has one, else reboot).
    pub onfail: Option<OnFail>,
}

impl BootConfig<'static> {
    /// What an empty command line gives.
    pub const DEFAULT: Self = BootConfig {
        mode: Mode::Auto,
        data: DeviceSpec::Label(contract::DATA_LABEL.as_bytes()),
        media: None,
        image: contract::DEFAULT_IMAGE.as_bytes(),
        timeout_s: contract::DEFAULT_TIMEOUT_S,
        toram: false,
        verity: true,
        ramsize: contract::DEFAULT_RAMSIZE.as_bytes(),
        init: contract::DEFAULT_INIT.as_bytes(),
        debug: false,
        quiet: false,
        onfail: None,
    };
}

impl Default for BootConfig<'static> {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Longest timeout accepted, in seconds; anything above is taken for a typo.
pub const MAX_TIMEOUT_S: u32 = 3600;

/// Why a word was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A `k1os.*` key we do not know.
    UnknownKey,
    /// A value that does not parse or is out of range.
    BadValue,
    /// A key that needs a value had none (or an empty one).
    MissingValue,
}

impl Problem {
    pub fn as_str(&self) -> &'static str {
        match self {
            Problem::UnknownKey => "unknown parameter",
            Problem::BadValue => "bad value",
            Problem::MissingValue => "missing value",
        }
    }
}

/// One ignored word; `value` is empty when the word had none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Warning<'a> {
    pub problem: Problem,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// Parses `/proc/cmdline`. Never fails: what cannot be used is reported
/// through `warn` (in line order) and the earlier value or default is kept.
pub fn parse<'a>(cmdline: &'a [u8], warn: &mut dyn FnMut(Warning<'a>)) -> BootConfig<'a> {
    let mut config = BootConfig::DEFAULT;
    for (k, v) in words(cmdline) {
        if let Err(problem) = config.apply(k, v) {
            warn(Warning {
                problem,
                key: k,
                value: v.unwrap_or_default(),
            });
        }
    }
    config
}

impl<'a> BootConfig<'a> {
    /// Applies one word; `Ok` also for words that are not ours.
    // Inlined into `parse`, this grows by almost 1 KiB at opt-level "z".
    #[inline(never)]
    fn apply(&mut self, k: &'a [u8], v: Option<&'a [u8]>) -> Result<(), Problem> {
        use Problem::BadValue;
        let Some(&key) = KEY_NAMES.find(k).and_then(|i| KEYS.get(i)) else {
            if k.starts_with(key::NAMESPACE.as_bytes()) {
                return Err(Problem::UnknownKey);
            }
            return Ok(());
        };
        // Flags and `nopersist` may stand alone; every other key needs a value.
        match (key, v) {
            (Key::Nopersist, None) => self.mode = Mode::Ram,
            (Key::Nopersist, Some(_)) => return Err(BadValue),
            (Key::Toram, _) => self.toram = flag(v)?,
            (Key::Verity, _) => self.verity = flag(v)?,
            (Key::Debug, _) => self.debug = flag(v)?,
            (Key::Quiet, _) => self.quiet = flag(v)?,
            _ => {
                let v = value(v)?;
                match key {
                    Key::Mode => self.mode = Mode::from_value(v).ok_or(BadValue)?,
                    Key::Data | Key::Media => {
                        let spec = DeviceSpec::parse(v).ok_or(BadValue)?;
                        match key {
                            Key::Data => self.data = spec,
                            _ => self.media = Some(spec),
                        }
                    }
                    Key::Image => self.image = absolute(v)?,
                    Key::Init => self.init = absolute(v)?,
                    Key::Timeout => {
                        self.timeout_s = number(v)
                            .filter(|&t| t <= MAX_TIMEOUT_S as u64)
                            .ok_or(BadValue)? as u32
                    }
                    Key::Ramsize if valid_ramsize(v) => self.ramsize = v,
                    Key::Onfail => self.onfail = Some(OnFail::from_value(v).ok_or(BadValue)?),
                    _ => return Err(BadValue),
                }
            }
        }
        Ok(())
    }
}

/// Our keys. (Tables and [`Names::find`] rather than a `match` on byte
/// strings: that compiles to byte-by-byte comparisons, close to 1 KiB more.)
#[derive(Clone, Copy)]
enum Key {
    Mode,
    Data,
    Media,
    Image,
    Init,
    Timeout,
    Ramsize,
    Onfail,
    Toram,
    Verity,
    Debug,
    Quiet,
    Nopersist,
}

/// The key names, and in [`KEYS`] what each one is.
const KEY_LIST: &[&[u8]] = &[
    key::MODE.as_bytes(),
    key::DATA.as_bytes(),
    key::LEGACY_PERSIST.as_bytes(),
    key::MEDIA.as_bytes(),
    key::IMAGE.as_bytes(),
    key::INIT.as_bytes(),
    key::TIMEOUT.as_bytes(),
    key::RAMSIZE.as_bytes(),
    key::ONFAIL.as_bytes(),
    key::TORAM.as_bytes(),
    key::VERITY.as_bytes(),
    key::DEBUG.as_bytes(),
    key::QUIET.as_bytes(),
    key::LEGACY_NOPERSIST.as_bytes(),
];
const KEY_NAMES: Names<{ Names::len(KEY_LIST) }> = Names::pack(KEY_LIST);
const KEYS: [Key; KEY_LIST.len()] = [
    Key::Mode,
    Key::Data,
    Key::Data,
    Key::Media,
    Key::Image,
    Key::Init,
    Key::Timeout,
    Key::Ramsize,
    Key::Onfail,
    Key::Toram,
    Key::Verity,
    Key::Debug,
    Key::Quiet,
    Key::Nopersist,
];

/// Names packed one after the other, each after a byte holding its length.
/// (Stage 1 looks words up in a few such lists; as `&[u8]` slices they would
/// cost 16 bytes of pointer and length per name.)
struct Names<const N: usize>([u8; N]);

impl Names<0> {
    /// The packed size of `names`.
    const fn len(names: &[&[u8]]) -> usize {
        let mut total = 0;
        let mut i = 0;
        while i < names.len() {
            total += 1 + names[i].len();
            i += 1;
        }
        total
    }
}

impl<const N: usize> Names<N> {
    /// Packs `names` (each at most 255 bytes; `N` is [`Names::len`] of them).
    const fn pack(names: &[&[u8]]) -> Self {
        let mut out = [0; N];
        let mut at = 0;
        let mut i = 0;
        while i < names.len() {
            let name = names[i];
            assert!(name.len() <= 255);
            out[at] = name.len() as u8;
            at += 1;
            let mut j = 0;
            while j < name.len() {
                out[at] = name[j];
                at += 1;
                j += 1;
            }
            i += 1;
        }
        assert!(at == N);
        Names(out)
    }

    /// The position of `word` in the list.
    fn find(&self, word: &[u8]) -> Option<usize> {
        find(&self.0, word)
    }
}

/// [`Names::find`], once for every list size.
fn find(mut packed: &[u8], word: &[u8]) -> Option<usize> {
    let mut index = 0;
    while let Some((&len, rest)) = packed.split_first() {
        let (name, next) = rest.split_at_checked(usize::from(len))?;
        if name == word {
            return Some(index);
        }
        packed = next;
        index += 1;
    }
    None
}

/// The value of a key that needs one.
fn value(v: Option<&[u8]>) -> Result<&[u8], Problem> {
    v.filter(|v| !v.is_empty()).ok_or(Problem::MissingValue)
}

fn flag(v: Option<&[u8]>) -> Result<bool, Problem> {
    /// The first four mean on, the others off.
    const LIST: &[&[u8]] = &[b"1", b"yes", b"on", b"true", b"0", b"no", b"off", b"false"];
    const VALUES: Names<{ Names::len(LIST) }> = Names::pack(LIST);
    match v {
        None => Ok(true),
        Some(v) => VALUES.find(v).map(|i| i < 4).ok_or(Problem::BadValue),
    }
}

/// An absolute path that names something below `/`.
fn absolute(v: &[u8]) -> Result<&[u8], Problem> {
    match v {
        [b'/', _, ..] => Ok(v),
        _ => Err(Problem::BadValue),
    }
}

/// Decimal digits only (no sign, no spaces), without overflow.
pub(crate) fn number(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |n, &c| {
        if !c.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

/// `N%` with N in 1..=100, or `N[kKmMgG]` of at least 1 MiB (tmpfs takes
/// `size=0` as "unlimited" and a few bytes as one page: both are mistakes).
fn valid_ramsize(v: &[u8]) -> bool {
    let (digits, unit) = match v.split_last() {
        Some((b'%', n)) => return number(n).is_some_and(|p| (1..=100).contains(&p)),
        Some((b'k' | b'K', n)) => (n, 1u64 << 10),
        Some((b'm' | b'M', n)) => (n, 1 << 20),
        Some((b'g' | b'G', n)) => (n, 1 << 30),
        _ => (v, 1),
    };
    number(digits)
        .and_then(|n| n.checked_mul(unit))
        .is_some_and(|bytes| bytes >= 1 << 20)
}

/// The kernel's `isspace()` (`lib/ctype.c`): ASCII whitespace and Latin-1 NBSP.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0)
}

/// The `(key, value)` words of a command line, split like the kernel's
/// `next_arg()`; `value` is `None` for a word without `=`.
/// `/proc/cmdline`'s closing newline is not part of the kernel's line.
pub fn words(cmdline: &[u8]) -> Words<'_> {
    Words {
        rest: cmdline.strip_suffix(b"\n").unwrap_or(cmdline),
    }
}

/// Iterator returned by [`words`].
#[derive(Clone, Debug)]
pub struct Words<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Words<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.rest.iter().position(|&c| !is_space(c))?;
        let mut s = self.rest.get(start..)?;
        let quoted = s.first() == Some(&b'"');
        if quoted {
            s = s.get(1..)?;
        }
        let mut in_quote = quoted;
        let mut equals = None;
        let mut end = s.len();
        for (i, &c) in s.iter().enumerate() {
            if is_space(c) && !in_quote {
                end = i;
                break;
            }
            // As in the kernel, a leading `=` does not count.
            if c == b'=' && equals.is_none() && i > 0 {
                equals = Some(i);
            }
            if c == b'"' {
                in_quote = !in_quote;
            }
        }
        let (word, rest) = s.split_at_checked(end)?;
        self.rest = rest;

        // The word's closing quote goes, once, whether it closes a quoted
        // value or a quoted word.
        let closing = |w: &'a [u8], quote: bool| match w.split_last() {
            Some((b'"', head)) if quote => head,
            _ => w,
        };
        let ends_in_quote = word.last() == Some(&b'"');
        Some(match equals {
            None => (closing(word, quoted), None),
            Some(e) => {
                let key = word.get(..e)?;
                let mut v = word.get(e + 1..)?;
                match v.split_first() {
                    Some((b'"', tail)) => {
                        // Both quotes came out of the value; if the value was
                        // just `"`, the word's last quote was that one.
                        v = if ends_in_quote && !tail.is_empty() {
                            closing(tail, true)
                        } else {
                            tail
                        }
                    }
                    _ => v = closing(v, quoted),
                }
                (key, Some(v))
            }
        })
    }
}

impl uDisplay for Mode {
    fn fmt<W: uWrite + ?Sized>(&self, f: &mut Formatter<'_, W>) -> Result<(), W::Error> {
        f.write_str(self.as_str())
    }
}

impl uDisplay for OnFail {
    fn fmt<W: uWrite + ?Sized>(&self, f: &mut Formatter<'_, W>) -> Result<(), W::Error> {
        f.write_str(self.as_str())
    }
}

impl uDisplay for Problem {
    fn fmt<W: uWrite + ?Sized>(&self, f: &mut Formatter<'_, W>) -> Result<(), W::Error> {
        f.write_str(self.as_str())
    }
}

/// `LABEL=…`, `UUID=…` or the path, as it was given.
impl uDisplay for DeviceSpec<'_> {
    fn fmt<W: uWrite + ?Sized>(&self, f: &mut Formatter<'_, W>) -> Result<(), W::Error> {
        let (prefix, v) = match *self {
            DeviceSpec::Label(v) => ("LABEL=", v),
            DeviceSpec::Uuid(v) => ("UUID=", v),
            DeviceSpec::Path(v) => ("", v),
        };
        f.write_str(prefix)?;
        Bytes(v).fmt(f)
    }
}

/// `bad value: k1os.mode="bogus"`, `missing value: k1os.data`,
/// `unknown parameter: k1os.foo`; the caller says what happens next.
impl uDisplay for Warning<'_> {
    fn fmt<W: uWrite + ?Sized>(&self, f: &mut Formatter<'_, W>) -> Result<(), W::Error> {
        f.write_str(self.problem.as_str())?;
        f.write_str(": ")?;
        Bytes(self.key).fmt(f)?;
        if !self.value.is_empty() || self.problem == Problem::BadValue {
            f.write_str("=\"")?;
            Bytes(self.value).fmt(f)?;
            f.write_char('"')?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeviceSpec::{Label, Path, Uuid};
    use Problem::{BadValue, MissingValue, UnknownKey};

    fn run(line: &[u8]) -> (BootConfig<'_>, Vec<(Problem, String, String)>) {
        let mut warnings = Vec::new();
        let config = parse(line, &mut |w| {
            warnings.push((
                w.problem,
                String::from_utf8_lossy(w.key).into_owned(),
                String::from_utf8_lossy(w.value).into_owned(),
            ))
        });
        (config, warnings)
    }

    /// What a line changes from the defaults.
    type Edit = fn(&mut BootConfig<'static>);
    /// Name, line, changes from the defaults, warnings `(problem, key, value)`.
    type Case = (
        &'static str,
        &'static [u8],
        Edit,
        &'static [(Problem, &'static str, &'static str)],
    );

    #[test]
    fn table() {
        let d = BootConfig::DEFAULT;
        let cases: &[Case] = &[
            ("empty line", b"", |_| {}, &[]),
            ("only whitespace", b" \t\n ", |_| {}, &[]),
            (
                "other kernel parameters ignored",
                b"BOOT_IMAGE=/boot/vmlinuz console=ttyS0,115200 ro root=/dev/sda1 -- single\n",
                |_| {},
                &[],
            ),
            ("mode persist", b"k1os.mode=persist", |c| c.mode = Mode::Persist, &[]),
            ("mode ram", b"k1os.mode=ram\n", |c| c.mode = Mode::Ram, &[]),
            (
                "mode bad value keeps default",
                b"k1os.mode=RAM",
                |_| {},
                &[(BadValue, "k1os.mode", "RAM")],
            ),
            (
                "mode missing value",
                b"k1os.mode k1os.mode=",
                |_| {},
                &[(MissingValue, "k1os.mode", ""), (MissingValue, "k1os.mode", "")],
            ),
            ("nopersist", b"quiet nopersist", |c| {
                c.mode = Mode::Ram;
                c.quiet = true
            }, &[]),
            (
                "nopersist with a value",
                b"nopersist=1",
                |_| {},
                &[(BadValue, "nopersist", "1")],
            ),
            ("persist=/dev/sdb2", b"persist=/dev/sdb2", |c| c.data = Path(b"/dev/sdb2"), &[]),
            (
                "persist without value",
                b"persist",
                |_| {},
                &[(MissingValue, "persist", "")],
            ),
            ("data label", b"k1os.data=LABEL=MINE", |c| c.data = Label(b"MINE"), &[]),
            (
                "data uuid",
                b"k1os.data=UUID=0b4a5c3e-1f2d-4e5f-8a9b-0c1d2e3f4a5b",
                |c| c.data = Uuid(b"0b4a5c3e-1f2d-4e5f-8a9b-0c1d2e3f4a5b"),
                &[],
            ),
            ("data fat uuid", b"k1os.data=UUID=ABCD-1234", |c| c.data = Uuid(b"ABCD-1234"), &[]),
            ("data path", b"k1os.data=/dev/nvme0n1p3", |c| c.data = Path(b"/dev/nvme0n1p3"), &[]),
            (
                "data bad specs",
                b"k1os.data=sdb2 k1os.data=LABEL= k1os.data=UUID=xyz k1os.data=/dev/ k1os.data=PARTUUID=1",
                |_| {},
                &[
                    (BadValue, "k1os.data", "sdb2"),
                    (BadValue, "k1os.data", "LABEL="),
                    (BadValue, "k1os.data", "UUID=xyz"),
                    (BadValue, "k1os.data", "/dev/"),
                    (BadValue, "k1os.data", "PARTUUID=1"),
                ],
            ),
            (
                "media label",
                b"k1os.media=LABEL=K1OS",
                |c| c.media = Some(Label(b"K1OS")),
                &[],
            ),
            ("media path", b"k1os.media=/dev/sr0", |c| c.media = Some(Path(b"/dev/sr0")), &[]),
            ("media missing", b"k1os.media", |_| {}, &[(MissingValue, "k1os.media", "")]),
            ("image", b"k1os.image=/k1os/root.sfs", |c| c.image = b"/k1os/root.sfs", &[]),
            (
                "image bad values",
                b"k1os.image=system.squashfs k1os.image=/",
                |_| {},
                &[(BadValue, "k1os.image", "system.squashfs"), (BadValue, "k1os.image", "/")],
            ),
            ("init", b"init=/bin/sh", |c| c.init = b"/bin/sh", &[]),
            (
                "init bad value",
                b"init=bin/sh init",
                |_| {},
                &[(BadValue, "init", "bin/sh"), (MissingValue, "init", "")],
            ),
            ("timeout", b"k1os.timeout=30", |c| c.timeout_s = 30, &[]),
            ("timeout zero", b"k1os.timeout=0", |c| c.timeout_s = 0, &[]),
            ("timeout max", b"k1os.timeout=3600", |c| c.timeout_s = 3600, &[]),
            (
                "timeout bad values",
                b"k1os.timeout=3601 k1os.timeout=-1 k1os.timeout=5s k1os.timeout=99999999999999999999999",
                |_| {},
                &[
                    (BadValue, "k1os.timeout", "3601"),
                    (BadValue, "k1os.timeout", "-1"),
                    (BadValue, "k1os.timeout", "5s"),
                    (BadValue, "k1os.timeout", "99999999999999999999999"),
                ],
            ),
            ("ramsize percent", b"k1os.ramsize=75%", |c| c.ramsize = b"75%", &[]),
            ("ramsize M", b"k1os.ramsize=512M", |c| c.ramsize = b"512M", &[]),
            ("ramsize g", b"k1os.ramsize=2g", |c| c.ramsize = b"2g", &[]),
            ("ramsize k", b"k1os.ramsize=1024k", |c| c.ramsize = b"1024k", &[]),
            ("ramsize bytes", b"k1os.ramsize=1048576", |c| c.ramsize = b"1048576", &[]),
            (
                "ramsize bad values",
                b"k1os.ramsize=0% k1os.ramsize=101% k1os.ramsize=0 k1os.ramsize=512 \
                  k1os.ramsize=1T k1os.ramsize=M k1os.ramsize=% k1os.ramsize=-5M \
                  k1os.ramsize=99999999999999G",
                |_| {},
                &[
                    (BadValue, "k1os.ramsize", "0%"),
                    (BadValue, "k1os.ramsize", "101%"),
                    (BadValue, "k1os.ramsize", "0"),
                    (BadValue, "k1os.ramsize", "512"),
                    (BadValue, "k1os.ramsize", "1T"),
                    (BadValue, "k1os.ramsize", "M"),
                    (BadValue, "k1os.ramsize", "%"),
                    (BadValue, "k1os.ramsize", "-5M"),
                    (BadValue, "k1os.ramsize", "99999999999999G"),
                ],
            ),
            ("onfail", b"k1os.onfail=poweroff", |c| c.onfail = Some(OnFail::Poweroff), &[]),
            (
                "onfail bad value",
                b"k1os.onfail=explode",
                |_| {},
                &[(BadValue, "k1os.onfail", "explode")],
            ),
            ("toram bare", b"k1os.toram", |c| c.toram = true, &[]),
            ("toram values", b"k1os.toram=yes k1os.debug=1 quiet=on", |c| {
                c.toram = true;
                c.debug = true;
                c.quiet = true
            }, &[]),
            ("toram off again", b"k1os.toram k1os.toram=0", |_| {}, &[]),
            ("verity off", b"k1os.verity=off", |c| c.verity = false, &[]),
            ("verity bare", b"k1os.verity=0 k1os.verity", |_| {}, &[]),
            (
                "verity bad value",
                b"k1os.verity=no k1os.verity=later",
                |c| c.verity = false,
                &[(BadValue, "k1os.verity", "later")],
            ),
            (
                "toram bad value",
                b"k1os.toram=maybe",
                |_| {},
                &[(BadValue, "k1os.toram", "maybe")],
            ),
            ("debug", b"k1os.debug", |c| c.debug = true, &[]),
            (
                "unknown k1os key",
                b"k1os.colour=blue k1os.verbose k1os.",
                |_| {},
                &[
                    (UnknownKey, "k1os.colour", "blue"),
                    (UnknownKey, "k1os.verbose", ""),
                    (UnknownKey, "k1os.", ""),
                ],
            ),
            ("keys are case-sensitive", b"K1OS.MODE=ram Quiet", |_| {}, &[]),
            (
                "repeats: last wins",
                b"k1os.mode=ram k1os.mode=persist k1os.timeout=1 k1os.timeout=2",
                |c| {
                    c.mode = Mode::Persist;
                    c.timeout_s = 2
                },
                &[],
            ),
            (
                "repeats: a bad last value keeps the earlier one",
                b"k1os.mode=ram k1os.mode=bogus",
                |c| c.mode = Mode::Ram,
                &[(BadValue, "k1os.mode", "bogus")],
            ),
            (
                "legacy and new spellings: last wins",
                b"persist=/dev/sdb2 k1os.data=LABEL=NEW nopersist k1os.mode=auto",
                |c| c.data = Label(b"NEW"),
                &[],
            ),
            (
                "quoted value with spaces",
                b"quiet k1os.data=\"LABEL=MY DATA\" k1os.debug\n",
                |c| {
                    c.data = Label(b"MY DATA");
                    c.quiet = true;
                    c.debug = true
                },
                &[],
            ),
            (
                "quoted word with spaces",
                b"\"k1os.data=LABEL=MY DATA\" k1os.toram",
                |c| {
                    c.data = Label(b"MY DATA");
                    c.toram = true
                },
                &[],
            ),
            (
                "quotes inside the value",
                b"k1os.data=LABEL=\"MY DATA\" k1os.media=LABEL=\"\"",
                |c| c.data = Label(b"MY DATA"),
                &[(BadValue, "k1os.media", "LABEL=\"\"")],
            ),
            ("quoted bare flag", b"\"k1os.toram\"", |c| c.toram = true, &[]),
            (
                "quoted image path",
                b"k1os.image=\"/my images/root.sfs\"",
                |c| c.image = b"/my images/root.sfs",
                &[],
            ),
            (
                "unterminated quote runs to the end of the line",
                b"k1os.debug k1os.data=\"LABEL=MY DATA k1os.toram\n",
                |c| {
                    c.debug = true;
                    c.data = Label(b"MY DATA k1os.toram")
                },
                &[],
            ),
            (
                "empty quoted value",
                b"k1os.image=\"\" k1os.media=\"",
                |_| {},
                &[(MissingValue, "k1os.image", ""), (MissingValue, "k1os.media", "")],
            ),
            (
                "tabs, CR and NBSP are whitespace",
                b"k1os.debug\tk1os.toram\r\nquiet\xa0k1os.mode=ram",
                |c| {
                    c.debug = true;
                    c.toram = true;
                    c.quiet = true;
                    c.mode = Mode::Ram
                },
                &[],
            ),
            (
                "non-UTF-8 bytes",
                b"k1os.data=LABEL=\xff\xfe k1os.\xc3(=x k1os.mode=\x80",
                |c| c.data = Label(b"\xff\xfe"),
                &[(UnknownKey, "k1os.\u{fffd}(", "x"), (BadValue, "k1os.mode", "\u{fffd}")],
            ),
            (
                "label of 33 bytes cannot match anything",
                b"k1os.data=LABEL=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                |_| {},
                &[(BadValue, "k1os.data", "LABEL=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")],
            ),
        ];
        for (name, line, edit, want_warnings) in cases {
            let mut want = d;
            edit(&mut want);
            let (got, warnings) = run(line);
            assert_eq!(got, want, "{name}");
            let want_warnings: Vec<_> = want_warnings
                .iter()
                .map(|(p, k, v)| (*p, k.to_string(), v.to_string()))
                .collect();
            assert_eq!(warnings, want_warnings, "{name}");
        }
    }

    #[test]
    fn defaults_come_from_the_contract() {
        let (c, w) = run(b"");
        assert!(w.is_empty());
        assert_eq!(c, BootConfig::default());
        assert_eq!(c.mode, Mode::Auto);
        assert_eq!(c.data, Label(contract::DATA_LABEL.as_bytes()));
        assert_eq!(c.media, None);
        assert_eq!(c.image, contract::DEFAULT_IMAGE.as_bytes());
        assert_eq!(c.timeout_s, contract::DEFAULT_TIMEOUT_S);
        assert_eq!(c.ramsize, contract::DEFAULT_RAMSIZE.as_bytes());
        assert_eq!(c.init, contract::DEFAULT_INIT.as_bytes());
        assert!(!c.toram && !c.debug && !c.quiet);
        assert!(c.verity);
        assert_eq!(c.onfail, None);
    }

    /// Values are slices of the input, not copies.
    #[test]
    fn borrows_from_the_input() {
        let line = b"k1os.image=/a.sfs".to_vec();
        let (c, _) = run(&line);
        assert_eq!(c.image.as_ptr(), line[11..].as_ptr());
    }

    #[test]
    fn words_split_like_next_arg() {
        let w = |line: &'static [u8]| words(line).collect::<Vec<_>>();
        let s = |v: &'static [u8]| Some(v);
        assert_eq!(w(b""), vec![]);
        assert_eq!(w(b"a b=c"), vec![(&b"a"[..], None), (b"b", s(b"c"))]);
        assert_eq!(w(b"a=b=c"), vec![(&b"a"[..], s(b"b=c"))]);
        assert_eq!(
            w(b"a=\"b c\" d"),
            vec![(&b"a"[..], s(b"b c")), (b"d", None)]
        );
        assert_eq!(
            w(b"\"a=b c\"   d"),
            vec![(&b"a"[..], s(b"b c")), (b"d", None)]
        );
        // Both quoted: the closing quote goes once, as in the kernel.
        assert_eq!(w(b"\"a=\"b\"\""), vec![(&b"a"[..], s(b"b\""))]);
        // A quote in the middle only protects the spaces.
        assert_eq!(
            w(b"a=x\"y z\"w v"),
            vec![(&b"a"[..], s(b"x\"y z\"w")), (b"v", None)]
        );
        assert_eq!(w(b"\""), vec![(&b""[..], None)]);
        assert_eq!(w(b"\"\""), vec![(&b""[..], None)]);
        assert_eq!(w(b"a=\""), vec![(&b"a"[..], s(b""))]);
        assert_eq!(w(b"\"a=\""), vec![(&b"a"[..], s(b""))]);
        assert_eq!(w(b"=x"), vec![(&b"=x"[..], None)]);
        assert_eq!(w(b"=a=b"), vec![(&b"=a"[..], s(b"b"))]);
        assert_eq!(w(b"a\n"), vec![(&b"a"[..], None)]);
        assert_eq!(w(b"a=\"b\n"), vec![(&b"a"[..], s(b"b"))]);
        assert_eq!(w(b"a= b"), vec![(&b"a"[..], s(b"")), (b"b", None)]);
    }

    /// x86 truncates at 2048 bytes, other architectures allow more: any length
    /// and any bytes must parse without a panic.
    #[test]
    fn long_and_odd_lines() {
        let mut line = Vec::new();
        for i in 0..2000 {
            line.extend_from_slice(format!("param{i}=value{i} ").as_bytes());
        }
        line.extend_from_slice(b"k1os.mode=ram\n");
        let (c, w) = run(&line);
        assert_eq!(c.mode, Mode::Ram);
        assert!(w.is_empty());

        let long = format!("k1os.image=/{}", "a".repeat(100_000));
        assert_eq!(run(long.as_bytes()).0.image.len(), 100_001);

        // Every short byte string: no panic.
        let alphabet = b"k1os.=\" \n\xa0/LABEL";
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    for d in alphabet {
                        let line = [*a, *b, *c, *d];
                        let _ = run(&line);
                        let _ = words(&line).count();
                    }
                }
            }
        }
    }

    struct Out(String);
    impl uWrite for Out {
        type Error = ();
        fn write_str(&mut self, s: &str) -> Result<(), ()> {
            self.0.push_str(s);
            Ok(())
        }
    }
    fn show(v: &impl uDisplay) -> String {
        let mut out = Out(String::new());
        ufmt::uwrite!(out, "{}", v).unwrap();
        out.0
    }

    #[test]
    fn display() {
        assert_eq!(show(&Mode::Auto), "auto");
        assert_eq!(show(&Mode::Persist), "persist");
        assert_eq!(show(&Mode::Ram), "ram");
        assert_eq!(show(&OnFail::Shell), "shell");
        assert_eq!(show(&OnFail::Reboot), "reboot");
        assert_eq!(show(&OnFail::Poweroff), "poweroff");
        assert_eq!(show(&OnFail::Halt), "halt");
        assert_eq!(show(&Label(b"MY DATA")), "LABEL=MY DATA");
        assert_eq!(show(&Uuid(b"abcd-1234")), "UUID=abcd-1234");
        assert_eq!(show(&Path(b"/dev/sda1")), "/dev/sda1");
        let w = |problem, key: &'static [u8], value: &'static [u8]| Warning {
            problem,
            key,
            value,
        };
        assert_eq!(
            show(&w(BadValue, b"k1os.mode", b"x y")),
            "bad value: k1os.mode=\"x y\""
        );
        assert_eq!(
            show(&w(BadValue, b"k1os.mode", b"")),
            "bad value: k1os.mode=\"\""
        );
        assert_eq!(show(&w(MissingValue, b"init", b"")), "missing value: init");
        assert_eq!(
            show(&w(UnknownKey, b"k1os.x", b"")),
            "unknown parameter: k1os.x"
        );
        assert_eq!(
            show(&w(UnknownKey, b"k1os.x", b"1")),
            "unknown parameter: k1os.x=\"1\""
        );
    }

    /// Every mode and onfail name parses back to itself.
    #[test]
    fn names_round_trip() {
        for m in [Mode::Auto, Mode::Persist, Mode::Ram] {
            assert_eq!(Mode::from_value(m.as_str().as_bytes()), Some(m));
        }
        for o in [
            OnFail::Shell,
            OnFail::Reboot,
            OnFail::Poweroff,
            OnFail::Halt,
            OnFail::Wait,
        ] {
            assert_eq!(OnFail::from_value(o.as_str().as_bytes()), Some(o));
        }
    }
}

//! Stage 1's command-line parser (`k1os_contract::cmdline`) on any bytes.
//!
//! Asserts:
//! - the words are the ones the kernel's `next_arg()` (lib/cmdline.c) gives,
//!   checked against a line-by-line transliteration of that C function;
//! - every value the config holds is valid by the contract's rules (checked
//!   here independently) and is a slice of the input or a default;
//! - every warning is a word of the line, in line order, of the right kind;
//! - round trip: the config written back as a canonical command line parses,
//!   without warnings, to the same config, and writing that again gives the
//!   same line;
//! - a kernel module's parameters (`kmod::params`, what stage 1 hands
//!   `finit_module`) are exactly the words `<module>.<param>[=<value>]` with a
//!   non-empty param, in line order, `-` and `_` being one character.
#![no_main]

use k1os_contract::cmdline::{self, BootConfig, DeviceSpec, MAX_TIMEOUT_S, Problem, Warning};
use k1os_contract::contract::{self, key};
use k1os_contract::kmod;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let words: Vec<(&[u8], Option<&[u8]>)> = cmdline::words(line).collect();
    // The kernel's line is a C string: it cannot hold a NUL.
    if !line.contains(&0) {
        let kernel = kernel_words(line);
        let ours: Vec<(Vec<u8>, Option<Vec<u8>>)> = words
            .iter()
            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect();
        assert_eq!(ours, kernel, "words differ from the kernel's next_arg()");
    }

    let mut warnings: Vec<Warning> = Vec::new();
    let config = cmdline::parse(line, &mut |w| warnings.push(w));
    check_config(&config, line);
    check_warnings(&warnings, &words);

    let canonical = write(&config);
    let mut again_warnings = Vec::new();
    let again = cmdline::parse(&canonical, &mut |w| again_warnings.push(w));
    assert!(
        again_warnings.is_empty(),
        "the canonical line {:?} warns: {again_warnings:?}",
        String::from_utf8_lossy(&canonical)
    );
    assert_eq!(
        again,
        config,
        "the canonical line {:?} parses to another config",
        String::from_utf8_lossy(&canonical)
    );
    assert_eq!(write(&again), canonical, "writing is not a fixpoint");

    check_module_params(line, &words);
});

/// [`kmod::params`] for the modules the line's words name (and one it may
/// spell either way), against the words read here.
fn check_module_params(line: &[u8], words: &[(&[u8], Option<&[u8]>)]) {
    let split = |key: &[u8]| -> Option<(Vec<u8>, usize)> {
        let dot = key.iter().position(|&c| c == b'.')?;
        let name = key[..dot].iter().map(|&c| if c == b'-' { b'_' } else { c });
        Some((name.collect(), dot))
    };
    let mut modules: Vec<&[u8]> = words
        .iter()
        .filter_map(|(k, _)| k.iter().position(|&c| c == b'.').map(|dot| &k[..dot]))
        .take(8)
        .collect();
    modules.push(b"usb-storage");
    for module in modules {
        let wanted = split(&[module, b"."].concat()).expect("a dot").0;
        let expected: Vec<(&[u8], Option<&[u8]>)> = words
            .iter()
            .filter_map(|&(k, v)| {
                let (name, dot) = split(k)?;
                let param = &k[dot + 1..];
                (name == wanted && !param.is_empty()).then_some((param, v))
            })
            .collect();
        let mut got = Vec::new();
        kmod::params(line, module, &mut |p, v| got.push((p, v)));
        assert_eq!(
            got,
            expected,
            "the parameters of module {:?}",
            String::from_utf8_lossy(module)
        );
    }
}

/// The kernel's `isspace()` (lib/ctype.c: ASCII whitespace and Latin-1 NBSP).
fn kernel_isspace(c: u8) -> bool {
    matches!(c, 9..=13 | b' ' | 0xa0)
}

/// `parse_args()`'s loop over `next_arg()`, on a NUL-terminated copy that it
/// cuts up in place as the C code does. Every `/* … */` is the C line.
fn kernel_words(line: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    // /proc/cmdline ends with a newline that is not part of the kernel's line.
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut buf = line.to_vec();
    buf.push(0);
    let cstr = |buf: &[u8], at: usize| -> Vec<u8> {
        let end = buf[at..].iter().position(|&c| c == 0).unwrap() + at;
        buf[at..end].to_vec()
    };
    let skip_spaces = |buf: &[u8], mut at: usize| {
        while kernel_isspace(buf[at]) {
            at += 1;
        }
        at
    };
    let mut out = Vec::new();
    /* args = skip_spaces(args); while (*args) { … } */
    let mut args = skip_spaces(&buf, 0);
    while buf[args] != 0 {
        /* next_arg(args, &param, &val) */
        let (mut in_quote, mut quoted) = (false, false);
        if buf[args] == b'"' {
            args += 1;
            in_quote = true;
            quoted = true;
        }
        let mut equals = 0;
        let mut i = 0;
        while buf[args + i] != 0 {
            if kernel_isspace(buf[args + i]) && !in_quote {
                break;
            }
            if equals == 0 && buf[args + i] == b'=' {
                equals = i;
            }
            if buf[args + i] == b'"' {
                in_quote = !in_quote;
            }
            i += 1;
        }
        let param = args;
        let val = if equals == 0 {
            None
        } else {
            buf[args + equals] = 0;
            let mut val = args + equals + 1;
            /* Don't include quotes in value. */
            if buf[val] == b'"' {
                val += 1;
                if buf[args + i - 1] == b'"' {
                    buf[args + i - 1] = 0;
                }
            }
            Some(val)
        };
        if quoted && i > 0 && buf[args + i - 1] == b'"' {
            buf[args + i - 1] = 0;
        }
        let next = if buf[args + i] != 0 {
            buf[args + i] = 0;
            args + i + 1
        } else {
            args + i
        };
        out.push((cstr(&buf, param), val.map(|v| cstr(&buf, v))));
        /* Chew up trailing spaces. */
        args = skip_spaces(&buf, next);
    }
    out
}

/// `part` is a slice of `whole` (by address, not by content).
fn within(part: &[u8], whole: &[u8]) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

/// A value of the config: the contract's default, or a slice of the line.
fn from_line_or(value: &[u8], default: &str, line: &[u8]) {
    assert!(
        value == default.as_bytes() || within(value, line),
        "{:?} is neither the default nor from the line",
        String::from_utf8_lossy(value)
    );
}

fn check_spec(spec: &DeviceSpec, line: &[u8], default: Option<&str>) {
    match *spec {
        DeviceSpec::Label(l) => {
            assert!((1..=32).contains(&l.len()), "label of {} bytes", l.len());
            if default != Some(contract::DATA_LABEL) || l != contract::DATA_LABEL.as_bytes() {
                assert!(within(l, line), "label not from the line");
            }
        }
        DeviceSpec::Uuid(u) => {
            let digits = u.iter().filter(|c| c.is_ascii_hexdigit()).count();
            assert!(u.iter().all(|&c| c.is_ascii_hexdigit() || c == b'-'));
            assert!((1..=32).contains(&digits), "{digits} hex digits in a UUID");
            assert!(within(u, line));
        }
        DeviceSpec::Path(p) => {
            assert!(p.starts_with(b"/dev/") && p.len() > 5);
            assert!(within(p, line));
        }
    }
}

/// A tmpfs `size=` the contract accepts, decided without `cmdline`'s code:
/// `N%` with N in 1..=100, or N bytes / kK / mM / gG of at least 1 MiB.
fn ramsize_ok(v: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(v) else {
        return false;
    };
    let digits_value = |d: &str| -> Option<u128> {
        if d.is_empty() || !d.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        // Leading zeros do not change the value; u128 holds any u64 product.
        let d = d.trim_start_matches('0');
        if d.len() > 30 {
            return Some(u128::MAX);
        }
        Some(d.parse::<u128>().unwrap_or(0))
    };
    if let Some(n) = s.strip_suffix('%') {
        return digits_value(n).is_some_and(|p| (1..=100).contains(&p));
    }
    let (digits, unit) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1u128 << 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1 << 20),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    // The parser counts in u64: more than that is refused, not wrapped.
    digits_value(digits)
        .and_then(|n| n.checked_mul(unit))
        .is_some_and(|bytes| bytes >= 1 << 20 && bytes <= u128::from(u64::MAX))
}

fn check_config(c: &BootConfig, line: &[u8]) {
    assert!(c.timeout_s <= MAX_TIMEOUT_S);
    for (path, default) in [
        (c.image, contract::DEFAULT_IMAGE),
        (c.init, contract::DEFAULT_INIT),
    ] {
        assert!(
            path.len() >= 2 && path[0] == b'/',
            "{path:?} is not absolute"
        );
        from_line_or(path, default, line);
    }
    assert!(
        ramsize_ok(c.ramsize),
        "ramsize {:?}",
        String::from_utf8_lossy(c.ramsize)
    );
    from_line_or(c.ramsize, contract::DEFAULT_RAMSIZE, line);
    check_spec(&c.data, line, Some(contract::DATA_LABEL));
    if let Some(media) = &c.media {
        check_spec(media, line, None);
    }
}

const OUR_KEYS: &[&str] = &[
    key::MODE,
    key::DATA,
    key::MEDIA,
    key::IMAGE,
    key::TIMEOUT,
    key::TORAM,
    key::VERITY,
    key::RAMSIZE,
    key::DEBUG,
    key::ONFAIL,
    key::INIT,
    key::QUIET,
    key::LEGACY_NOPERSIST,
    key::LEGACY_PERSIST,
];

/// Each warning is a later word of the line than the one before, with that
/// word's key and value, and a problem that fits the word.
fn check_warnings(warnings: &[Warning], words: &[(&[u8], Option<&[u8]>)]) {
    let mut rest = words.iter();
    for w in warnings {
        let (k, v) = rest
            .find(|(k, _)| k.as_ptr() == w.key.as_ptr() && k.len() == w.key.len())
            .unwrap_or_else(|| panic!("warning {w:?} is not a later word of the line"));
        assert_eq!(w.value, v.unwrap_or_default());
        let ours = OUR_KEYS.iter().any(|o| o.as_bytes() == *k);
        match w.problem {
            Problem::UnknownKey => {
                assert!(!ours && k.starts_with(key::NAMESPACE.as_bytes()));
            }
            Problem::MissingValue => assert!(ours && v.is_none_or(<[u8]>::is_empty)),
            Problem::BadValue => assert!(ours),
        }
    }
}

/// `key=value` as one word that the parser reads back as exactly that key
/// and value. The value came out of some word, which had one of these eight
/// shapes (an opening quote, a quote before the value, a closing quote, each
/// there or not); the first shape that reads back is taken. `true` with it:
/// the word ends at a space (it can stand anywhere); `false`: it only reads
/// back at the end of the line (an unterminated quote).
fn word(key: &str, value: &[u8]) -> (Vec<u8>, bool) {
    let mut last_only = None;
    for shape in 0..8u8 {
        let mut w = Vec::new();
        if shape & 1 != 0 {
            w.push(b'"');
        }
        w.extend_from_slice(key.as_bytes());
        w.push(b'=');
        if shape & 2 != 0 {
            w.push(b'"');
        }
        w.extend_from_slice(value);
        if shape & 4 != 0 {
            w.push(b'"');
        }
        let want = [(key.as_bytes(), Some(value))];
        if cmdline::words(&w).collect::<Vec<_>>() != want {
            continue;
        }
        let mut followed = w.clone();
        followed.extend_from_slice(b" x");
        let got: Vec<_> = cmdline::words(&followed).collect();
        if got == [(key.as_bytes(), Some(value)), (&b"x"[..], None)] {
            return (w, true);
        }
        last_only.get_or_insert(w);
    }
    let w = last_only.unwrap_or_else(|| {
        panic!(
            "no word reads back as {key}={:?}",
            String::from_utf8_lossy(value)
        )
    });
    (w, false)
}

/// The value of `k1os.data=` / `k1os.media=` for `spec`.
fn spec_value(spec: &DeviceSpec) -> Vec<u8> {
    let (prefix, body): (&[u8], &[u8]) = match *spec {
        DeviceSpec::Label(l) => (b"LABEL=", l),
        DeviceSpec::Uuid(u) => (b"UUID=", u),
        DeviceSpec::Path(p) => (b"", p),
    };
    let plain = [prefix, body].concat();
    if DeviceSpec::parse(&plain) == Some(*spec) {
        return plain;
    }
    // A label that itself starts and ends with `"` loses them unless quoted.
    let quoted = [prefix, b"\"", body, b"\""].concat();
    assert_eq!(DeviceSpec::parse(&quoted), Some(*spec), "{spec:?}");
    quoted
}

/// The config as a canonical command line: every key, in one order.
fn write(c: &BootConfig) -> Vec<u8> {
    let flag = |on: bool| if on { &b"1"[..] } else { b"0" };
    let timeout = c.timeout_s.to_string();
    let mut fields: Vec<(&str, Vec<u8>)> = vec![
        (key::MODE, c.mode.as_str().as_bytes().to_vec()),
        (key::DATA, spec_value(&c.data)),
        (key::IMAGE, c.image.to_vec()),
        (key::TIMEOUT, timeout.into_bytes()),
        (key::TORAM, flag(c.toram).to_vec()),
        (key::VERITY, flag(c.verity).to_vec()),
        (key::RAMSIZE, c.ramsize.to_vec()),
        (key::INIT, c.init.to_vec()),
        (key::DEBUG, flag(c.debug).to_vec()),
        (key::QUIET, flag(c.quiet).to_vec()),
    ];
    if let Some(media) = &c.media {
        fields.push((key::MEDIA, spec_value(media)));
    }
    if let Some(onfail) = c.onfail {
        fields.push((key::ONFAIL, onfail.as_str().as_bytes().to_vec()));
    }
    let mut anywhere = Vec::new();
    let mut at_end = Vec::new();
    for (k, v) in &fields {
        match word(k, v) {
            (w, true) => anywhere.push(w),
            (w, false) => at_end.push(w),
        }
    }
    // Only the line's last word can have ended inside a quote: every other
    // value came out of a word that ended at a space.
    assert!(
        at_end.len() <= 1,
        "{} values can only end the line",
        at_end.len()
    );
    anywhere.extend(at_end);
    anywhere.join(&b' ')
}

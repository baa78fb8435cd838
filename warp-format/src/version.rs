//! Versions compare as dpkg compares them (`1.35.0-4+deb12u1+b1` <
//! `1.35.0-4+deb12u2`, `1:0.9` > `2.0`, `1.0~rc1` < `1.0`), because K1OS's
//! packages carry Debian-style versions; semver cannot order those. And the
//! constraints a user or a `depends` entry writes: `name`, `name=V`,
//! `name>=V`, `name<V`.
use std::cmp::Ordering;
use std::fmt;

/// Compares two versions `[epoch:]upstream[-revision]` as `dpkg
/// --compare-versions` does. A missing epoch is 0, a missing revision is
/// empty (which sorts before any other revision, as in dpkg).
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(ua, ub))
        .then_with(|| verrevcmp(ra, rb))
}

/// Epoch, upstream version and revision: the epoch is before the first `:`,
/// the revision after the last `-`.
fn split(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// dpkg's `order()`: `~` before everything (even the end), then the end,
/// then letters, then everything else.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

/// dpkg's `verrevcmp`: alternating non-digit parts (compared with
/// [`order`]) and digit parts (compared as numbers).
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let mut first_diff = 0;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == 0 {
                first_diff = a[i] as i32 - b[j] as i32;
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

/// Whether `v` is a version warp accepts: non-empty, at most 128 bytes, only
/// `A-Za-z0-9.+~:-`, an epoch of digits if there is one, and starting with a
/// digit after the epoch (dpkg's rules, strictly).
pub fn valid(v: &str) -> bool {
    if v.is_empty() || v.len() > 128 {
        return false;
    }
    if !v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".+~:-".contains(&b))
    {
        return false;
    }
    let rest = match v.split_once(':') {
        Some((e, rest)) => {
            if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) || rest.contains(':') {
                return false;
            }
            rest
        }
        None => v,
    };
    rest.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

/// How a constraint restricts the version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Any,
    Eq,
    Ge,
    Lt,
}

/// `name`, `name=V`, `name>=V` or `name<V`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    pub name: String,
    pub op: Op,
    /// Empty for [`Op::Any`].
    pub version: String,
}

impl Constraint {
    /// Parses a constraint; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<Constraint, String> {
        let s = s.trim();
        let (name, op, version) = if let Some((n, v)) = s.split_once(">=") {
            (n, Op::Ge, v)
        } else if let Some((n, v)) = s.split_once('<') {
            (n, Op::Lt, v)
        } else if let Some((n, v)) = s.split_once('=') {
            (n, Op::Eq, v)
        } else {
            (s, Op::Any, "")
        };
        let (name, version) = (name.trim(), version.trim());
        if !crate::valid_name(name) {
            return Err(format!(
                "`{s}`: `{name}` is not a package name (a-z, 0-9, `-_.+`, at most 64)"
            ));
        }
        if op != Op::Any && !valid(version) {
            return Err(format!("`{s}`: `{version}` is not a version"));
        }
        Ok(Constraint {
            name: name.to_string(),
            op,
            version: version.to_string(),
        })
    }

    /// Whether `version` meets the constraint.
    pub fn allows(&self, version: &str) -> bool {
        let ord = compare(version, &self.version);
        match self.op {
            Op::Any => true,
            Op::Eq => ord == Ordering::Equal,
            Op::Ge => ord != Ordering::Less,
            Op::Lt => ord == Ordering::Less,
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Any => return f.write_str(&self.name),
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Lt => "<",
        };
        write!(f, "{}{op}{}", self.name, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    /// Cases from dpkg's own test suite (lib/dpkg/t/t-version.c) and
    /// Debian policy §5.6.12, plus K1OS's busybox version.
    #[test]
    fn dpkg_order() {
        let table = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.0-0", Equal), // an empty revision compares like "0"
            ("0:1.0", "1.0", Equal),
            ("1:0.9", "2.0", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0+", Less),
            ("1.2", "1.10", Less),
            ("1.002", "1.2", Equal),
            ("1.35.0-4+deb12u1+b1", "1.35.0-4+deb12u1", Greater),
            ("1.35.0-4+deb12u1+b1", "1.35.0-4+deb12u2", Less),
            ("1:1.35.0-4+deb12u1+b1", "1.36.0-1", Greater),
            ("1.0-1", "1.0-2", Less),
            ("1.0-10", "1.0-9", Greater),
            ("2.0", "10.0", Less),
            ("1.0.0", "1.0", Greater),
            ("1.0-1~bpo1", "1.0-1", Less),
            ("6.1.192-2", "6.1.192-3", Less),
            ("0.1", "0.01", Equal),
            ("1.a", "1.+", Less),
        ];
        for (a, b, want) in table {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn valid_versions() {
        for v in ["1.0", "1:2.3-4", "1.35.0-4+deb12u1+b1", "0~rc1"] {
            assert!(valid(v), "{v}");
        }
        for v in [
            "", "a1.0", "1.0 ", "1:", ":1.0", "1:2:3", "1.0/2", "x:1.0", "1.0\n",
        ] {
            assert!(!valid(v), "{v:?}");
        }
    }

    #[test]
    fn constraints() {
        let c = Constraint::parse("hello>=1.0-2").unwrap();
        assert_eq!((c.name.as_str(), c.op), ("hello", Op::Ge));
        assert!(c.allows("1.0-2") && c.allows("1.1") && !c.allows("1.0-1"));
        let c = Constraint::parse("hello=1.0").unwrap();
        assert!(c.allows("1.0") && c.allows("0:1.0") && !c.allows("1.0-1"));
        let c = Constraint::parse("hello<2").unwrap();
        assert!(c.allows("1.9") && !c.allows("2") && c.allows("2~rc1"));
        assert!(Constraint::parse("hello").unwrap().allows("anything1"));
        assert_eq!(Constraint::parse("a>=1").unwrap().to_string(), "a>=1");
        for bad in ["", "Hello", "a>=", "a=x", "../a", "a b"] {
            assert!(Constraint::parse(bad).is_err(), "{bad}");
        }
    }
}

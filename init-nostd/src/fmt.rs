//! Showing bytes in log lines and messages, without `core::fmt` (stage 1
//! formats with `ufmt`: `core::fmt` would cost kilobytes of its size budget).

use ufmt::{Formatter, uDisplay, uWrite};

/// Shows bytes from the command line, a label or a path: printable ASCII as
/// is, every other byte as `?`, so a log line stays one readable line.
/// (Showing UTF-8 would mean validating it: almost 1 KiB more in stage 1.)
#[derive(Clone, Copy, Debug)]
pub struct Bytes<'a>(pub &'a [u8]);

impl uDisplay for Bytes<'_> {
    fn fmt<W: uWrite + ?Sized>(&self, f: &mut Formatter<'_, W>) -> Result<(), W::Error> {
        for &c in self.0 {
            let printable = c.is_ascii_graphic() || c == b' ';
            f.write_char(if printable { char::from(c) } else { '?' })?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A `ufmt` writer into a `String` (ufmt's own needs its `std` feature).
    pub struct Out(pub String);

    impl uWrite for Out {
        type Error = core::convert::Infallible;
        fn write_str(&mut self, s: &str) -> Result<(), Self::Error> {
            self.0.push_str(s);
            Ok(())
        }
    }

    #[test]
    fn unprintable_bytes_are_question_marks() {
        let mut out = Out(String::new());
        let _ = ufmt::uwrite!(out, "{}", Bytes(b"caf\xc3\xa9 \xff\x1b[2J\t"));
        assert_eq!(out.0, "caf?? ??[2J?");
    }
}

//! Kernel modules in the initramfs (`docs/boot-contract.md`, "Kernel
//! modules"): the pure half of loading them — a list line's module name,
//! and the module's parameters on the kernel command line, which the kernel
//! itself applies only to built-in code (for a loadable module modprobe
//! reads them from `/proc/cmdline`; stage 1 has no modprobe, so it does the
//! same).

use crate::cmdline;

/// The module name of a list line: the file name without `.ko`
/// (`usb-storage.ko` → `usb-storage`).
pub fn module_name(file: &[u8]) -> &[u8] {
    file.strip_suffix(b".ko").unwrap_or(file)
}

/// Whether two module names are the same module: `-` and `_` are one
/// character to the kernel (`usb-storage` is `usb_storage`).
pub fn same_module(a: &[u8], b: &[u8]) -> bool {
    let norm = |c: &u8| if *c == b'-' { b'_' } else { *c };
    a.len() == b.len() && a.iter().map(norm).eq(b.iter().map(norm))
}

/// Calls `each(param, value)` for every word `<module>.<param>[=<value>]` of
/// `cmdline` (split as the kernel splits it) that names `module`, in order:
/// what `finit_module` gets as the module's parameters.
pub fn params<'a>(
    cmdline: &'a [u8],
    module: &[u8],
    // `dyn`: one copy of the word splitter in stage 1, not one per caller.
    each: &mut dyn FnMut(&'a [u8], Option<&'a [u8]>),
) {
    for (key, value) in cmdline::words(cmdline) {
        let Some(dot) = key.iter().position(|&c| c == b'.') else {
            continue;
        };
        let (name, param) = key.split_at(dot);
        let param = param.get(1..).unwrap_or_default();
        if !param.is_empty() && same_module(name, module) {
            each(param, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_their_spellings() {
        assert_eq!(module_name(b"usb-storage.ko"), b"usb-storage");
        assert_eq!(module_name(b"odd"), b"odd");
        assert!(same_module(b"usb-storage", b"usb_storage"));
        assert!(!same_module(b"usb-storage", b"usb_storag"));
        assert!(!same_module(b"uas", b"usb"));
    }

    #[test]
    fn the_module_s_words_are_its_parameters() {
        let line = b"console=ttyS0 usb_storage.delay_use=0 usb-storage.quirks=\"a:b:u\" \
                     uas.x=1 usb-storage.flag usb-storage.=3 .y=1 k1os.mode=ram\n";
        let mut got: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        params(line, b"usb-storage", &mut |p, v| {
            got.push((p.to_vec(), v.map(<[u8]>::to_vec)))
        });
        let want: Vec<(Vec<u8>, Option<Vec<u8>>)> = vec![
            (b"delay_use".to_vec(), Some(b"0".to_vec())),
            (b"quirks".to_vec(), Some(b"a:b:u".to_vec())),
            (b"flag".to_vec(), None),
        ];
        assert_eq!(got, want);
        params(line, b"ext4", &mut |p, _| panic!("{p:?}"));
    }
}

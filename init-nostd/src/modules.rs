//! Loading the initramfs's kernel modules (`docs/boot-contract.md`, "Kernel
//! modules") before devices are looked for: for a kernel whose drivers are
//! modules (Debian's), the filesystems, disk, USB and keyboard drivers.
//! Each module of the list is opened and given to `finit_module` with its
//! parameters from the command line. One that is already there (built in,
//! or loaded as another's dependency: `EEXIST`) is fine; any other failure
//! is a warning naming the module and the errno, and the boot goes on: a
//! driver for hardware the machine does not have may fail, and a missing
//! driver the boot does need shows up as the fatal line that says what
//! could not be found.

use k1os_contract::contract::{self, cstr};
use k1os_contract::fmt::Bytes;
use k1os_contract::kmod;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::error::ErrnoName;
use crate::text::{self, PATH_MAX, Text};
use crate::{log, mounts};

const STEP: &str = "load the kernel modules";

// The list is a file of the modules' directory, under its contract name:
// stage 1 opens `<dir>/<line>`, host-tools writes both from these constants.
const _: () = assert!(text::is_concat(
    contract::INITRAMFS_MODULE_LIST.as_bytes(),
    &[
        contract::INITRAMFS_MODULES.as_bytes(),
        b"/",
        contract::MODULE_LIST_NAME.as_bytes()
    ]
));

/// Loads every module of [`cstr::INITRAMFS_MODULE_LIST`], in its order; an
/// initramfs without the list (a kernel with its drivers built in) loads
/// nothing and says nothing.
pub fn load_all(cmdline: &[u8]) {
    let mut buf = [0u8; contract::MODULE_LIST_MAX];
    let list = match mounts::read_file(cstr::INITRAMFS_MODULE_LIST, &mut buf) {
        Ok(list) => list,
        Err(Errno::NOENT) => return,
        Err(e) => {
            crate::warn!(
                "{}: {} ({})",
                STEP,
                contract::INITRAMFS_MODULE_LIST,
                ErrnoName(e)
            );
            return;
        }
    };
    let start = log::elapsed_us();
    let (mut loaded, mut failed) = (0u32, 0u32);
    // Only whole lines: a list cut at the buffer's end loses its last one
    // (host-tools never packs a list that long).
    for line in list.split_inclusive(|&b| b == b'\n') {
        let Some(file) = line.strip_suffix(b"\n").filter(|f| !f.is_empty()) else {
            continue;
        };
        let name = kmod::module_name(file);
        match load(file, name, cmdline) {
            Ok(()) | Err(Errno::EXIST) => loaded += 1,
            Err(e) => {
                failed += 1;
                crate::warn!(
                    "{}: {} ({}); the boot goes on",
                    STEP,
                    Bytes(name),
                    ErrnoName(e)
                );
            }
        }
    }
    crate::info!(
        "kernel modules: {} loaded, {} failed, in {} us",
        loaded,
        failed,
        log::elapsed_us().saturating_sub(start)
    );
}

/// `finit_module` of `/lib/modules/<file>` with the module's parameters.
fn load(file: &[u8], name: &[u8], cmdline: &[u8]) -> Result<(), Errno> {
    let mut path_buf = text::buf();
    let path = text::join(
        &mut path_buf,
        &[contract::INITRAMFS_MODULES.as_bytes(), b"/", file],
    )?;
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    // `param=value param2` as modprobe passes them; a value with a space
    // goes in quotes, as the kernel splits the string like its command line.
    let mut params_buf = text::buf::<PATH_MAX>();
    let mut params = Text::new(&mut params_buf);
    kmod::params(cmdline, name, &mut |param, value| {
        if !params.bytes().is_empty() {
            params.push(b" ");
        }
        params.push(param);
        if let Some(value) = value {
            let quote: &[u8] = if value.contains(&b' ') { b"\"" } else { b"" };
            params.push(b"=");
            params.push(quote);
            params.push(value);
            params.push(quote);
        }
    });
    rustix::system::finit_module(&fd, params.into_c_str()?, 0)
}

//! Where warp keeps things, relative to the root it manages (`/`, or
//! `--root DIR`). Every path warp touches comes from here.
//!
//! | path | owner | what |
//! |---|---|---|
//! | `usr/share/warp/keys/*.pub` | image | trusted repository keys |
//! | `usr/share/warp/repositories` | image | the default repository list |
//! | `etc/warp/keys.d/*.pub` | administrator | more trusted keys (`warp key`) |
//! | `etc/warp/repositories` | administrator | the repository list, once edited (`warp repo`) |
//! | `etc/warp/world` | warp | what the user asked for, one constraint per line |
//! | `var/lib/warp/` | warp | lock, journal, installed database, history, verified indexes |
//! | `var/cache/warp/` | warp | verified archives by sha256, `partial/` downloads |
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }
    /// The root (`/` on a running system).
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `rel` (a package path such as `usr/local/bin/x`) under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn image_keys(&self) -> PathBuf {
        self.path("usr/share/warp/keys")
    }
    pub fn admin_keys(&self) -> PathBuf {
        self.path("etc/warp/keys.d")
    }
    pub fn default_repositories(&self) -> PathBuf {
        self.path("usr/share/warp/repositories")
    }
    pub fn repositories(&self) -> PathBuf {
        self.path("etc/warp/repositories")
    }
    pub fn world(&self) -> PathBuf {
        self.path("etc/warp/world")
    }

    pub fn state(&self) -> PathBuf {
        self.path("var/lib/warp")
    }
    pub fn lock(&self) -> PathBuf {
        self.path("var/lib/warp/lock")
    }
    pub fn journal(&self) -> PathBuf {
        self.path("var/lib/warp/journal.json")
    }
    pub fn installed(&self) -> PathBuf {
        self.path("var/lib/warp/installed.json")
    }
    pub fn history(&self) -> PathBuf {
        self.path("var/lib/warp/history")
    }
    /// The last verified `index.json`, `index.json.sig` and `serial` of a
    /// repository.
    pub fn repo_state(&self, repo: &str) -> PathBuf {
        self.path("var/lib/warp/repos").join(repo)
    }

    pub fn cache(&self) -> PathBuf {
        self.path("var/cache/warp")
    }
    /// A verified archive, named by its sha256.
    pub fn cached_archive(&self, sha256: &str) -> PathBuf {
        self.cache().join(format!("{sha256}.warp"))
    }
    pub fn partial(&self) -> PathBuf {
        self.path("var/cache/warp/partial")
    }

    /// Stage 1's boot record (`mode=ram` means installs vanish at reboot).
    pub fn boot_record(&self) -> PathBuf {
        self.path("run/k1os/boot")
    }
}

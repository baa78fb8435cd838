//! For the unit tests of the transaction engine and its commands: a managed
//! root in a temporary directory, packages built from a short description
//! into real `.warp` archives in its cache, and a listing of the tree to
//! compare before and after.
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use warp_format::archive;
use warp_format::manifest::Manifest;
use warp_format::version::Constraint;

use crate::context::Ctx;
use crate::layout::Layout;
use crate::txn::{self, Change, Plan, Summary};

pub struct Root {
    pub dir: tempfile::TempDir,
    pub ctx: Ctx,
}

pub fn root() -> Root {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Ctx {
        layout: Layout::new(dir.path().join("root")),
        dry_run: false,
        quiet: true,
        verbose: false,
        wait: false,
    };
    fs::create_dir_all(ctx.layout.root()).unwrap();
    // The lock file (and var/lib/warp) exist from the first command on:
    // create them now, so listings before and after compare files only.
    drop(txn::lock(&ctx).unwrap());
    Root { dir, ctx }
}

impl Root {
    pub fn path(&self, rel: &str) -> std::path::PathBuf {
        self.ctx.layout.path(rel)
    }

    /// A package built into the cache. Each entry is `(path, what)`: a path
    /// ending in `/` is a directory, `what` starting with `->` makes a
    /// symlink, anything else is a file's content (mode 0644, or 0755 for
    /// `…/bin/…`). Parent directories are added as the manifest needs them.
    pub fn package(&self, name: &str, version: &str, entries: &[(&str, &str)]) -> Change {
        self.package_with(name, version, entries, |_| {})
    }

    /// [`Root::package`], with a change to the manifest before it is written
    /// (`depends`, `conflicts`).
    pub fn package_with(
        &self,
        name: &str,
        version: &str,
        entries: &[(&str, &str)],
        edit: impl FnOnce(&mut Manifest),
    ) -> Change {
        let (manifest, tar) = self.build(name, version, entries, edit);
        self.cache(manifest, &tar)
    }

    /// The manifest and the uncompressed tar stream of a package described
    /// as for [`Root::package`].
    pub fn build(
        &self,
        name: &str,
        version: &str,
        entries: &[(&str, &str)],
        edit: impl FnOnce(&mut Manifest),
    ) -> (Manifest, Vec<u8>) {
        let tree = self.dir.path().join(format!("build/{name}-{version}"));
        fs::create_dir_all(&tree).unwrap();
        for (path, what) in entries {
            let full = tree.join(path.trim_end_matches('/'));
            if path.ends_with('/') {
                fs::create_dir_all(&full).unwrap();
                continue;
            }
            fs::create_dir_all(full.parent().unwrap()).unwrap();
            if let Some(target) = what.strip_prefix("->") {
                std::os::unix::fs::symlink(target, &full).unwrap();
            } else {
                fs::write(&full, what).unwrap();
                let mode = if path.contains("/bin/") { 0o755 } else { 0o644 };
                fs::set_permissions(&full, fs::Permissions::from_mode(mode)).unwrap();
            }
        }
        set_dir_modes(&tree);
        let mut manifest = Manifest {
            format: 1,
            name: name.into(),
            version: version.into(),
            arch: "x86_64".into(),
            description: format!("{name} for tests"),
            license: "MIT".into(),
            depends: vec![],
            conflicts: vec![],
            files: archive::scan(&tree).unwrap(),
        };
        edit(&mut manifest);
        let tar = archive::write(Vec::new(), &manifest, &tree, 1).unwrap();
        (manifest, tar)
    }

    /// Compresses `tar` into the cache under its sha256; the change for it.
    pub fn cache(&self, manifest: Manifest, tar: &[u8]) -> Change {
        let zst =
            ruzstd::encoding::compress_to_vec(tar, ruzstd::encoding::CompressionLevel::Fastest);
        let sha256 = warp_format::sha256_hex(&zst);
        let archive = self.ctx.layout.cached_archive(&sha256);
        fs::create_dir_all(archive.parent().unwrap()).unwrap();
        fs::write(&archive, &zst).unwrap();
        Change {
            manifest,
            archive,
            sha256,
            repo: "test".into(),
            auto: false,
        }
    }

    /// Applies a plan that installs `install` and removes `remove`, with
    /// the world made of the installed names after it.
    pub fn apply(&self, install: &[&Change], remove: &[&str]) -> crate::error::Result<Summary> {
        let plan = self.plan(install, remove);
        let lock = txn::lock(&self.ctx)?;
        txn::apply(&self.ctx, &lock, &plan)
    }

    pub fn plan(&self, install: &[&Change], remove: &[&str]) -> Plan {
        let db = crate::db::Db::load(&self.ctx.layout).unwrap();
        let mut world: Vec<String> = db
            .packages
            .keys()
            .filter(|n| !remove.contains(&n.as_str()))
            .cloned()
            .collect();
        for c in install {
            if !world.contains(&c.manifest.name) {
                world.push(c.manifest.name.clone());
            }
        }
        world.sort();
        Plan {
            install: install.iter().map(|c| (*c).clone()).collect(),
            remove: remove.iter().map(|s| s.to_string()).collect(),
            set_auto: vec![],
            world: world
                .iter()
                .map(|w| Constraint::parse(w).unwrap())
                .collect(),
            command: "test".into(),
        }
    }

    /// Every path under the root except warp's cache (which the tests fill
    /// by hand), with its type, mode and content or target.
    pub fn listing(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        list(self.ctx.layout.root(), "", &mut out);
        out.retain(|k, _| !k.starts_with("var/cache/warp"));
        out
    }

    /// The listing without warp's own state (`var/lib/warp`, `etc/warp`):
    /// only the package files.
    pub fn files(&self) -> BTreeMap<String, String> {
        let mut l = self.listing();
        l.retain(|k, _| !k.starts_with("var") && !k.starts_with("etc"));
        l
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap()
    }
}

fn set_dir_modes(dir: &Path) {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            set_dir_modes(&e.path());
        }
    }
}

fn list(root: &Path, rel: &str, out: &mut BTreeMap<String, String>) {
    let dir = root.join(rel);
    for e in fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let meta = fs::symlink_metadata(root.join(&path)).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        let t = meta.file_type();
        if t.is_symlink() {
            let target = fs::read_link(root.join(&path)).unwrap();
            out.insert(path, format!("l {}", target.display()));
        } else if t.is_dir() {
            out.insert(path.clone(), format!("d {mode:o}"));
            list(root, &path, out);
        } else {
            let content = fs::read(root.join(&path)).unwrap();
            out.insert(
                path,
                format!("f {mode:o} {}", warp_format::sha256_hex(&content)),
            );
        }
    }
}

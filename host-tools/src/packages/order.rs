//! Loading every package of a directory and ordering them by dependency.
use anyhow::{Context, Result, bail, ensure};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::{METADATA, Package, parse_package};

/// Reads every `<dir>/*/package.toml`, checks them all (metadata, scripts,
/// dependencies, cycles) and reports every problem at once.
pub fn load(dir: &Path) -> Result<Vec<Package>> {
    let entries = fs::read_dir(dir)
        .with_context(|| format!("reading the packages directory {}", dir.display()))?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for e in entries {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        if e.file_type()?.is_dir() && e.path().join(METADATA).is_file() {
            dirs.push(e.path());
        }
    }
    dirs.sort();
    let mut packages = Vec::new();
    let mut problems = Vec::new();
    for d in dirs {
        let file = d.join(METADATA);
        let parsed = fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))
            .and_then(|text| parse_package(&text, &d));
        match parsed {
            Ok(p) => packages.push(p),
            Err(e) => {
                for line in format!("{e:#}").lines() {
                    problems.push(format!("{}: {line}", file.display()));
                }
            }
        }
    }
    let names: BTreeSet<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    for p in &packages {
        for d in &p.depends {
            if !names.contains(d.as_str()) {
                problems.push(format!(
                    "package `{}` depends on `{d}`, which is not in {}",
                    p.name,
                    dir.display()
                ));
            }
        }
    }
    // The image never holds a repository package, so nothing in it can
    // need one; a repository package may build on image packages.
    let repository: BTreeSet<&str> = packages
        .iter()
        .filter(|p| p.repository)
        .map(|p| p.name.as_str())
        .collect();
    for p in packages.iter().filter(|p| !p.repository) {
        for d in p.depends.iter().filter(|d| repository.contains(d.as_str())) {
            problems.push(format!(
                "package `{}` goes into the image but depends on `{d}`, a repository package \
                 (`repository = true`), which the image does not hold",
                p.name
            ));
        }
    }
    if problems.is_empty()
        && let Err(e) = order(&packages)
    {
        problems.push(e.to_string());
    }
    if !problems.is_empty() {
        bail!(
            "{} problem(s) with the packages:\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
    ensure!(
        !packages.is_empty(),
        "no packages in {} (each is a directory with a {METADATA})",
        dir.display()
    );
    Ok(packages)
}

/// Dependency order (dependencies first; ties by name, so the order never
/// depends on the file system). Fails on a cycle, naming it.
pub fn order(packages: &[Package]) -> Result<Vec<usize>> {
    let index: BTreeMap<&str, usize> = packages
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let mut by_name: Vec<usize> = (0..packages.len()).collect();
    by_name.sort_by(|&a, &b| packages[a].name.cmp(&packages[b].name));
    // 0: not visited, 1: on the current path, 2: done.
    let mut state = vec![0u8; packages.len()];
    let mut out = Vec::new();
    fn visit(
        i: usize,
        packages: &[Package],
        index: &BTreeMap<&str, usize>,
        state: &mut [u8],
        path: &mut Vec<usize>,
        out: &mut Vec<usize>,
    ) -> Result<()> {
        match state[i] {
            2 => return Ok(()),
            1 => {
                let start = path.iter().position(|&p| p == i).unwrap_or(0);
                let mut cycle: Vec<&str> = path[start..]
                    .iter()
                    .map(|&p| packages[p].name.as_str())
                    .collect();
                cycle.push(&packages[i].name);
                bail!("dependency cycle: {}", cycle.join(" -> "));
            }
            _ => {}
        }
        state[i] = 1;
        path.push(i);
        let mut deps: Vec<usize> = packages[i]
            .depends
            .iter()
            .filter_map(|d| index.get(d.as_str()).copied())
            .collect();
        deps.sort_by(|&a, &b| packages[a].name.cmp(&packages[b].name));
        for d in deps {
            visit(d, packages, index, state, path, out)?;
        }
        path.pop();
        state[i] = 2;
        out.push(i);
        Ok(())
    }
    for i in by_name {
        visit(i, packages, &index, &mut state, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::packages_dir;

    fn p(name: &str, deps: &[&str]) -> Package {
        Package {
            name: name.into(),
            version: "1".into(),
            description: "d".into(),
            license: "MIT".into(),
            upstream: None,
            depends: deps.iter().map(|s| s.to_string()).collect(),
            repository: false,
            sources: vec![],
            dir: PathBuf::from("/nonexistent").join(name),
        }
    }

    #[test]
    fn dependency_order_and_cycles() {
        let pkgs = vec![p("c", &["b"]), p("a", &[]), p("b", &["a"]), p("d", &[])];
        let names: Vec<&str> = order(&pkgs)
            .unwrap()
            .into_iter()
            .map(|i| pkgs[i].name.as_str())
            .collect();
        assert_eq!(names, vec!["a", "b", "c", "d"]);
        let cyclic = vec![p("a", &["b"]), p("b", &["c"]), p("c", &["a"])];
        let err = order(&cyclic).unwrap_err().to_string();
        assert!(err.contains("a -> b -> c -> a"), "{err}");
    }

    #[test]
    fn an_image_package_cannot_depend_on_a_repository_package() {
        let tmp = tempfile::tempdir().unwrap();
        for (name, extra) in [
            ("tool", "repository = true\n"),
            ("app", "depends = [\"tool\"]\n"),
        ] {
            let dir = tmp.path().join(name);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("build.sh"), "true\n").unwrap();
            fs::write(
                dir.join(METADATA),
                format!(
                    "name = \"{name}\"\nversion = \"1\"\ndescription = \"d\"\nlicense = \"MIT\"\n{extra}"
                ),
            )
            .unwrap();
        }
        let err = load(tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains(
                "package `app` goes into the image but depends on `tool`, a repository package"
            ),
            "{err}"
        );
    }

    #[test]
    fn the_real_packages_are_valid() {
        let pkgs = load(&packages_dir()).unwrap();
        let names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
        assert!(
            names.contains(&"base") && names.contains(&"busybox"),
            "{names:?}"
        );
    }
}

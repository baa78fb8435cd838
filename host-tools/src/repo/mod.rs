//! `host-tools repo`: warp's repository on the host side — the signing keys
//! ([`keys`]), the repository built from the packages marked
//! `repository = true` ([`build`]: reproducible `.warp` archives,
//! `index.json`, its signify signature), a small HTTP server for it
//! ([`serve`]) and a check of a built repository ([`verify`]). The formats
//! are `warp_format`'s, the same code warp reads them with; the contract is
//! `docs/warp.md`.
pub mod build;
pub mod keys;
pub mod serve;
pub mod verify;

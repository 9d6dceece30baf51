//! Builds the browser assets from `assets/` at the repository root: installs the pinned npm
//! packages, runs Tailwind over our stylesheet and the Rust templates, and writes a table of the
//! files under content-hashed names for `src/lib.rs` to embed.
//!
//! Nothing written by others is kept in the repository; it comes from the lockfile here. A build
//! script fails by panicking, so every failure below panics with what to do about it.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const NEED_NODE: &str = "Fawkes builds its JS/CSS with Node.js and npm: install nodejs and npm";

/// Folders holding Rust string-literal templates whose class names Tailwind must see.
const TEMPLATE_SOURCES: [&str; 2] = ["crates/fawkes-web/src", "crates/fawkes-live/src"];

struct Built {
    /// The constant in `urls`.
    constant: &'static str,
    logical: &'static str,
    stem: &'static str,
    extension: &'static str,
    content_type: &'static str,
    source: PathBuf,
}

fn main() {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest.join("../..");
    let root = fs::canonicalize(&root).unwrap_or(root);
    let assets = root.join("assets");
    let out = PathBuf::from(env("OUT_DIR"));

    let lockfile = assets.join("package-lock.json");
    println!("cargo:rerun-if-changed={}", lockfile.display());
    println!(
        "cargo:rerun-if-changed={}",
        assets.join("package.json").display()
    );
    println!("cargo:rerun-if-changed={}", assets.join("css").display());
    println!("cargo:rerun-if-changed={}", assets.join("js").display());
    // Cargo reruns a script on every build while a watched path is missing, so a template
    // folder that does not exist yet is not watched (its first files come with other changes).
    for folder in TEMPLATE_SOURCES {
        let path = root.join(folder);
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }

    // Two cargo processes (a build and an editor's check) may run this at once; `npm ci`
    // deletes node_modules first, so one at a time. The advisory lock does not hinder npm.
    let guard = fs::File::open(&lockfile)
        .unwrap_or_else(|e| panic!("{} cannot be read: {e}", lockfile.display()));
    if let Err(e) = guard.lock() {
        panic!("cannot lock {}: {e}", lockfile.display());
    }
    install(&assets, &lockfile);

    let work = out.join("work");
    fresh_dir(&work);
    let css = work.join("app.css");
    run(
        Command::new(assets.join("node_modules/.bin/tailwindcss"))
            .arg("-i")
            .arg("css/app.css")
            .arg("-o")
            .arg(&css)
            .arg("--minify")
            .current_dir(&assets),
        "the Tailwind CLI (assets/node_modules/.bin/tailwindcss)",
        "Its error is printed above; a CSS error is in assets/css/app.css.",
    );

    let files = [
        Built {
            constant: "APP_CSS",
            logical: "app.css",
            stem: "app",
            extension: "css",
            content_type: "text/css; charset=utf-8",
            source: css,
        },
        Built {
            constant: "PHOENIX_JS",
            logical: "phoenix.js",
            stem: "phoenix",
            extension: "js",
            content_type: "text/javascript; charset=utf-8",
            source: assets.join("node_modules/phoenix/priv/static/phoenix.min.js"),
        },
        Built {
            constant: "LIVE_VIEW_JS",
            logical: "phoenix_live_view.js",
            stem: "phoenix_live_view",
            extension: "js",
            content_type: "text/javascript; charset=utf-8",
            source: assets
                .join("node_modules/phoenix_live_view/priv/static/phoenix_live_view.min.js"),
        },
        Built {
            constant: "APP_JS",
            logical: "app.js",
            stem: "app",
            extension: "js",
            content_type: "text/javascript; charset=utf-8",
            source: assets.join("js/app.js"),
        },
    ];

    // Hashed files of earlier runs would otherwise pile up here.
    let served = out.join("served");
    fresh_dir(&served);
    let mut table = String::new();
    let mut urls = String::new();
    for file in &files {
        let bytes = fs::read(&file.source)
            .unwrap_or_else(|e| panic!("{} cannot be read: {e}", file.source.display()));
        let name = format!("{}-{}.{}", file.stem, short_hash(&bytes), file.extension);
        let plain = served.join(&name);
        let gzipped = served.join(format!("{name}.gz"));
        write(&plain, &bytes);
        write(&gzipped, &gzip(&bytes));
        let _ = writeln!(
            table,
            "    Asset {{ file: {:?}, content_type: {:?}, \
             bytes: include_bytes!({:?}), gzip: include_bytes!({:?}) }},",
            name,
            file.content_type,
            path_str(&plain),
            path_str(&gzipped),
        );
        let _ = writeln!(
            urls,
            "    /// `{}` under its content-hashed name.\n    pub const {}: &str = \"/assets/{}\";",
            file.logical, file.constant, name
        );
    }

    let version = liveview_version(&assets);
    let generated = format!(
        "/// The version of the bundled `phoenix_live_view` client, from its package.json.\n\
         pub const LIVEVIEW_VERSION: &str = {version:?};\n\n\
         /// The URL paths of the assets, for the pages' `<link>` and `<script>` tags.\n\
         pub mod urls {{\n{urls}}}\n\n\
         static ASSETS: &[Asset] = &[\n{table}];\n"
    );
    write(&out.join("assets.rs"), generated.as_bytes());
    drop(guard);
}

/// Runs `npm ci` unless node_modules already matches the lockfile (npm writes its own copy
/// of the lockfile into node_modules, so that copy being newer means the install is current).
fn install(assets: &Path, lockfile: &Path) {
    let installed = assets.join("node_modules/.package-lock.json");
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(installed), Some(lock)) = (modified(&installed), modified(lockfile))
        && installed >= lock
    {
        return;
    }
    run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(assets),
        "npm ci in assets/",
        NEED_NODE,
    );
}

fn run(command: &mut Command, what: &str, hint: &str) {
    match command.status() {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("{what} failed ({status}). {hint}"),
        Err(e) => panic!("{what} could not be started ({e}). {NEED_NODE}"),
    }
}

fn liveview_version(assets: &Path) -> String {
    let path = assets.join("node_modules/phoenix_live_view/package.json");
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} cannot be read: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    match json.get("version").and_then(|v| v.as_str()) {
        Some(version) => version.to_owned(),
        None => panic!("{} has no version", path.display()),
    }
}

/// Ten hex digits of SHA-256: a name changes whenever the content does, so the files can be
/// cached for a year.
fn short_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::new();
    for byte in digest.iter().take(5) {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    if let Err(e) = encoder.write_all(bytes) {
        panic!("gzip: {e}");
    }
    encoder.finish().unwrap_or_else(|e| panic!("gzip: {e}"))
}

fn fresh_dir(path: &Path) {
    if path.exists() {
        fs::remove_dir_all(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn write(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap_or_else(|e| panic!("{} cannot be written: {e}", path.display()));
}

fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()))
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name}"))
}

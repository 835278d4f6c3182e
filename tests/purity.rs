//! The pure core stays pure: no kube, AWS SDK or tokio in the policy engine, signal
//! recognition, diagnosis or fact parsing (ARCHITECTURE.md). A new import there fails here.

use std::path::Path;

const PURE: [&str; 6] = [
    "src/policy",
    "src/preflight",
    "src/signal",
    "src/diagnose",
    "src/facts",
    "src/partition.rs",
];
/// The crates' paths as code names them (`signal::kube` is a local module, so plain `kube::`
/// is not forbidden; `use kube` and the crate's own modules are).
const FORBIDDEN: [&str; 9] = [
    "use kube",
    "kube::api",
    "kube::runtime",
    "kube::Client",
    "kube_runtime",
    "k8s_openapi",
    "aws_sdk_",
    "aws_config",
    "tokio",
];

fn sources(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            sources(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

#[test]
fn the_pure_modules_import_no_io_runtime() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in PURE {
        sources(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 10,
        "found only {} files: did the layout move?",
        files.len()
    );
    let offending: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            FORBIDDEN
                .iter()
                .filter(|needle| {
                    text.lines()
                        .any(|l| !l.trim_start().starts_with("//") && l.contains(*needle))
                })
                .map(|needle| format!("{} uses {needle}", f.display()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(offending.is_empty(), "{offending:#?}");
}

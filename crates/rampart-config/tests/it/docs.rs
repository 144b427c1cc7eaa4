//! docs/CONFIG.md cannot fall behind the code.
//!
//! The key reference between the markers is generated from the schema; after
//! changing a field or its `///` comment, regenerate it with
//! `RAMPART_BLESS_DOCS=1 cargo test -p rampart-config --test it docs`.

use std::path::PathBuf;

use rampart_config::{
    CHECK_IDS, PLACEHOLDER_SECRETS, RESERVED_ENV_VARS, key_reference, reference_markdown,
};

const BEGIN: &str = "<!-- BEGIN GENERATED KEY REFERENCE -->\n";
const END: &str = "<!-- END GENERATED KEY REFERENCE -->";

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/CONFIG.md")
}

fn doc() -> String {
    std::fs::read_to_string(doc_path()).expect("docs/CONFIG.md exists")
}

#[test]
fn every_key_path_appears_in_config_md() {
    let doc = doc();
    let missing: Vec<String> = key_reference()
        .into_iter()
        .map(|k| k.path)
        .filter(|path| !doc.contains(&format!("`{path}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from docs/CONFIG.md: {missing:?}"
    );
}

#[test]
fn generated_reference_is_current() {
    let doc = doc();
    let (Some(start), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("docs/CONFIG.md lacks the generated-reference markers");
    };
    let current = &doc[start + BEGIN.len()..end];
    let generated = reference_markdown();
    if current == generated {
        return;
    }
    if std::env::var_os("RAMPART_BLESS_DOCS").is_some() {
        let updated = format!("{}{generated}{}", &doc[..start + BEGIN.len()], &doc[end..]);
        std::fs::write(doc_path(), updated).unwrap();
        return;
    }
    panic!(
        "the key reference in docs/CONFIG.md is out of date; run\n  RAMPART_BLESS_DOCS=1 cargo test -p rampart-config --test it docs"
    );
}

#[test]
fn every_check_id_and_reserved_variable_is_documented() {
    let doc = doc();
    for id in CHECK_IDS {
        assert!(
            doc.contains(&format!("`{id}`")),
            "check id {id} missing from docs/CONFIG.md"
        );
    }
    for var in RESERVED_ENV_VARS {
        assert!(doc.contains(var), "{var} missing from docs/CONFIG.md");
    }
}

#[test]
fn example_secrets_in_the_docs_are_refused_as_placeholders() {
    let doc = doc();
    let mut rest = doc.as_str();
    while let Some(at) = rest.find("rampart-example-") {
        let word: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        assert!(
            PLACEHOLDER_SECRETS.contains(&word.as_str()),
            "{word} is used in docs/CONFIG.md but not refused as a placeholder"
        );
        rest = &rest[at + word.len()..];
    }
}

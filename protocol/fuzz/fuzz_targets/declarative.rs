//! The declarative alias file, YAML or JSON, as both planes read it.
//!
//! Properties: a refusal is a typed `FileError`; an accepted file holds only
//! valid, unique names and bounded descriptions; it survives a JSON round
//! trip unchanged (what `GET /api/admin/export` writes reads back the same),
//! and every entry converts to a record.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use nexus_protocol::record::MAX_DESCRIPTION_LEN;
use nexus_protocol::{AliasFile, AliasName, Context, FileError};

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    match AliasFile::parse(text) {
        Ok(file) => {
            let mut seen = HashSet::new();
            for (i, e) in file.aliases.iter().enumerate() {
                assert_eq!(Context::parse(e.context.as_str()).as_ref(), Ok(&e.context));
                assert_eq!(AliasName::parse(e.alias.as_str()).as_ref(), Ok(&e.alias));
                assert!(e.description.as_ref().is_none_or(|d| d.len() <= MAX_DESCRIPTION_LEN));
                assert!(seen.insert(e.key()), "duplicate accepted");
                let r = e.to_record(i as i64, 1, 0);
                assert_eq!(r.key(), e.key());
            }
            let json = serde_json::to_string(&file).expect("a parsed file serialises");
            let back = AliasFile::parse(&json).expect("its JSON form parses");
            assert_eq!(back, file);
        }
        Err(e) => {
            assert!(matches!(
                e,
                FileError::Json(_)
                    | FileError::Yaml(_)
                    | FileError::Duplicate { .. }
                    | FileError::DescriptionTooLong { .. }
                    | FileError::TooLarge { .. }
            ));
            assert!(!e.to_string().is_empty());
        }
    }
});

//! JSON merge patches of experiment configs: a reproduce spec's rows set fields of their group's
//! base config, and the app's tour steps set fields of the current config.

use serde_json::Value;

/// Sets every field of `patch` in `base`, recursing into objects; other values (arrays, and
/// `null`, which an optional field reads as "none") replace what was there. This is RFC 7386's
/// JSON merge patch except for `null`, which is set instead of removing the field.
pub fn merge_patch(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                merge_patch(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (base, patch) => *base = patch.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_patch_sets_fields_within_objects_and_replaces_everything_else() {
        let mut base = json!({"train": {"epochs": 3, "batch_size": 32}, "methods": ["plain"]});
        merge_patch(&mut base, &json!({"train": {"epochs": 5}, "methods": ["plain", "wsa"]}));
        assert_eq!(base, json!({"train": {"epochs": 5, "batch_size": 32}, "methods": ["plain", "wsa"]}));
    }
}

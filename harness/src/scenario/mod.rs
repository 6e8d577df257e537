//! Scenario files: the language ([`model`]), loading ([`load`]), checks ([`validate`]),
//! templates ([`template`]) and whose behaviour each check judges ([`judges`]).

pub mod judges;
pub mod load;
pub mod model;
pub mod template;
pub mod validate;
pub mod windows;

/// The JSON Schema of scenario files, generated from [`model::Scenario`].
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(model::Scenario);
    let mut text = serde_json::to_string_pretty(&schema).expect("schema serializes");
    text.push('\n');
    text
}

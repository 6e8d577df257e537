//! Loading YAML: scenario files, target files and expectations files all go through
//! [`parse_yaml`], the one place YAML is read, so every error names file, line and column.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::model::Scenario;
use super::validate;

/// What is wrong with an input file, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct InputError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: u64,
    /// 1-based column (0 when unknown).
    pub column: u64,
    /// What is wrong and what was expected.
    pub message: String,
}

impl InputError {
    /// An error at a place in `file`.
    pub fn at(file: &Path, line: u64, column: u64, message: impl Into<String>) -> Self {
        InputError {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// Reads YAML text into `T`, naming `file` in errors.
///
/// # Errors
/// [`InputError`] with the line and column of the offending node.
pub fn parse_yaml<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T, InputError> {
    serde_saphyr::from_str(text).map_err(|error| {
        let (line, column) = error
            .location()
            .map_or((0, 0), |location| (location.line(), location.column()));
        // The library's Display adds a source snippet; keep the first line, the message.
        let message = error
            .to_string()
            .lines()
            .next()
            .unwrap_or("invalid YAML")
            .trim()
            .to_string();
        let message = strip_location_suffix(&message);
        InputError::at(file, line, column, message)
    })
}

/// serde-saphyr writes "error: line L column C: message" (or ends with " at line L column
/// C"); our prefix already says where, so keep the message only.
fn strip_location_suffix(message: &str) -> String {
    let mut message = message.strip_prefix("error: ").unwrap_or(message);
    if let Some(rest) = message.strip_prefix("line ")
        && let Some((_, after)) = rest.split_once(": ")
        && rest
            .split(':')
            .next()
            .is_some_and(|place| place.contains("column"))
    {
        message = after;
    }
    match message.rfind(" at line ") {
        Some(index) if message[index..].contains("column") => message[..index].to_string(),
        _ => message.to_string(),
    }
}

/// Reads and parses a YAML file.
///
/// # Errors
/// [`InputError`] when it cannot be read (line 0) or parsed.
pub fn read_yaml<T: DeserializeOwned>(path: &Path) -> Result<T, InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| InputError::at(path, 0, 0, format!("cannot read: {error}")))?;
    parse_yaml(&text, path)
}

/// A scenario with where it came from.
#[derive(Clone, Debug)]
pub struct LoadedScenario {
    /// The file.
    pub path: PathBuf,
    /// The file relative to the root it was found under.
    pub relative: String,
    /// The pack: the first folder under that root (one JUnit testsuite per pack).
    pub pack: String,
    /// The scenario.
    pub scenario: Scenario,
}

/// The pack a scenario file belongs to: the folder right under a `scenarios` folder on its
/// path (`scenarios/core/rfc6121/x.yaml` is in `core`), else the folder it was found under.
fn pack_of(path: &Path, root: &Path) -> String {
    let components: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    let below_scenarios = components
        .windows(3)
        .rev()
        .find(|w| w[0] == "scenarios")
        .map(|w| w[1].clone());
    below_scenarios
        .or_else(|| root.file_name().map(|n| n.to_string_lossy().to_string()))
        .unwrap_or_else(|| "scenarios".to_string())
}

/// Every `.yaml`/`.yml` file under `paths` (files are taken as they are), sorted, with the
/// root each was found under.
///
/// # Errors
/// [`InputError`] for a path that does not exist or cannot be listed.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<(PathBuf, PathBuf)>, InputError> {
    let mut found = Vec::new();
    for root in paths {
        let meta = std::fs::metadata(root)
            .map_err(|error| InputError::at(root, 0, 0, format!("cannot open: {error}")))?;
        if meta.is_file() {
            let parent = root.parent().unwrap_or(Path::new("")).to_path_buf();
            found.push((root.clone(), parent));
            continue;
        }
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|error| InputError::at(&dir, 0, 0, format!("cannot list: {error}")))?;
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path
                    .extension()
                    .is_some_and(|ext| ext == "yaml" || ext == "yml")
                {
                    found.push((path, root.clone()));
                }
            }
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// Loads and validates every scenario under `paths`. All errors of all files are returned
/// together; if there is any, nothing may run.
///
/// # Errors
/// Every [`InputError`] found.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<LoadedScenario>, Vec<InputError>> {
    let files = discover(paths).map_err(|error| vec![error])?;
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for (path, root) in files {
        let relative = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .to_string_lossy()
            .to_string();
        let pack = pack_of(&path, &root);
        match read_yaml::<Scenario>(&path) {
            Ok(scenario) => {
                let problems = validate::check(&scenario, &path);
                if problems.is_empty() {
                    loaded.push(LoadedScenario {
                        path,
                        relative,
                        pack,
                        scenario,
                    });
                } else {
                    errors.extend(problems);
                }
            }
            Err(error) => errors.push(error),
        }
    }
    let mut seen: std::collections::BTreeMap<&str, &Path> = Default::default();
    for scenario in &loaded {
        if let Some(first) = seen.insert(&scenario.scenario.id, &scenario.path) {
            errors.push(InputError::at(
                &scenario.path,
                1,
                1,
                format!(
                    "duplicate scenario id {:?} (also in {})",
                    scenario.scenario.id,
                    first.display()
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(errors)
    }
}

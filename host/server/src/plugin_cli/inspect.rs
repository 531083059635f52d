//! Finding a plugin on disk and loading it on its own, exactly as the server loads it;
//! `plugins check`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use sceneintruder_runtime::{
    Description, Limits, MANIFEST_FILE, Manifest, OperatorSettings, PluginKind, PluginReport,
    PluginRuntime, PluginState, RuntimeConfig,
};

use crate::domain::export::{Catalog, ExportsConfig};

/// The WebAssembly target plugins are built for.
const WASM_TARGET: &str = "wasm32-wasip2";

/// A plugin found on disk: its manifest and the component to load.
pub struct Located {
    pub manifest: Manifest,
    /// The folder holding `plugin.toml`.
    pub manifest_dir: PathBuf,
    /// The component file to load.
    pub component: PathBuf,
    /// Where the component goes inside an installed plugin folder (the manifest's
    /// `component`).
    pub relative: PathBuf,
}

/// Find the manifest and the component of `path`: a crate folder (the component is in the
/// cargo target folder), an installed plugin folder, or a `.wasm` file with its
/// `plugin.toml` beside it. Every problem found is one message.
pub fn locate(path: &Path) -> Result<Located, Vec<String>> {
    let meta = std::fs::metadata(path).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    let (manifest_dir, given_component) = if meta.is_dir() {
        (path.to_path_buf(), None)
    } else if path.extension().is_some_and(|e| e == "wasm") {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        (dir, Some(path.to_path_buf()))
    } else {
        return Err(vec![format!(
            "{} is neither a plugin folder, a crate folder nor a .wasm component",
            path.display()
        )]);
    };
    let manifest_path = manifest_dir.join(MANIFEST_FILE);
    if !manifest_path.is_file() {
        return Err(vec![format!(
            "no {MANIFEST_FILE} in {}{}",
            manifest_dir.display(),
            if given_component.is_some() {
                " (a component is checked with the plugin.toml beside it)"
            } else {
                ""
            }
        )]);
    }
    let mut problems = Vec::new();
    let manifest = Manifest::load(&manifest_dir);
    let relative = match &manifest {
        Ok(m) => m
            .component
            .strip_prefix(&manifest_dir)
            .map(Path::to_path_buf)
            .ok(),
        Err(e) => {
            problems.push(e.to_string());
            lenient_component(&manifest_path)
        }
    };
    let component = match (&given_component, &relative) {
        (Some(given), _) => Some(given.clone()),
        (None, Some(relative)) if manifest_dir.join("Cargo.toml").is_file() => {
            let (found, candidates) = built_component(&manifest_dir, relative);
            match found {
                Some(found) => Some(found),
                None => {
                    problems.push(format!(
                        "component {} not found: build it with `cargo build --release --target {WASM_TARGET}` in {}",
                        candidates
                            .first()
                            .map(|c| c.display().to_string())
                            .unwrap_or_default(),
                        manifest_dir.display()
                    ));
                    None
                }
            }
        }
        (None, Some(relative)) => {
            let path = manifest_dir.join(relative);
            if path.is_file() {
                Some(path)
            } else {
                problems.push(format!("component {} not found", path.display()));
                None
            }
        }
        (None, None) => None,
    };
    match (manifest, component, relative) {
        (Ok(manifest), Some(component), Some(relative)) if problems.is_empty() => Ok(Located {
            manifest,
            manifest_dir,
            component,
            relative,
        }),
        _ => Err(problems),
    }
}

/// The `component` of a manifest that did not validate, when it is a plain relative path.
fn lenient_component(manifest_path: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(manifest_path).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    let rel = PathBuf::from(table.get("component")?.as_str()?);
    let plain =
        !rel.as_os_str().is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
    plain.then_some(rel)
}

/// The component cargo built for the crate in `crate_dir`: in `$CARGO_TARGET_DIR` (else
/// `<crate>/target`, or the `target` folder of an enclosing workspace) under
/// `wasm32-wasip2/release` (or the repository's `wasm-release` profile), the newest of
/// those that exist. Also returns where it was looked for, the likeliest first.
fn built_component(crate_dir: &Path, relative: &Path) -> (Option<PathBuf>, Vec<PathBuf>) {
    let targets: Vec<PathBuf> = match std::env::var_os("CARGO_TARGET_DIR").filter(|t| !t.is_empty())
    {
        Some(dir) => vec![PathBuf::from(dir)],
        None => {
            let absolute = std::fs::canonicalize(crate_dir).unwrap_or(crate_dir.to_path_buf());
            let mut targets = vec![crate_dir.join("target")];
            targets.extend(
                absolute
                    .ancestors()
                    .skip(1)
                    .filter(|a| a.join("Cargo.toml").is_file())
                    .map(|a| a.join("target")),
            );
            targets
        }
    };
    let file = relative.file_name().map(PathBuf::from).unwrap_or_default();
    let candidates: Vec<PathBuf> = targets
        .iter()
        .flat_map(|target| {
            ["release", "wasm-release"]
                .iter()
                .map(|profile| target.join(WASM_TARGET).join(profile).join(&file))
        })
        .collect();
    let found = candidates
        .iter()
        .filter_map(|c| Some((std::fs::metadata(c).ok()?.modified().ok()?, c)))
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, c)| c.clone());
    (found, candidates)
}

/// A plugin loaded by the runtime from a temporary plugins folder of its own.
pub struct Isolated {
    /// The temporary plugins folder (removed on drop).
    _dir: tempfile::TempDir,
    pub runtime: PluginRuntime,
    pub report: PluginReport,
}

impl Isolated {
    pub fn id(&self) -> &str {
        &self.report.id
    }

    /// Why the plugin did not load, if it did not.
    pub fn failure(&self) -> Option<&str> {
        match &self.report.state {
            PluginState::Loaded => None,
            PluginState::Failed { reason } => Some(reason),
        }
    }
}

/// Copy the plugin (plugin.toml and the component) into a temporary plugins folder and
/// load it with the server's runtime, default limits, the bundled plugins' digests and
/// `operator`'s settings and grants. The component is compiled, linked against its world
/// and its `info` export called under the load deadline.
pub async fn load_isolated(
    located: &Located,
    operator: OperatorSettings,
) -> anyhow::Result<Isolated> {
    let dir = tempfile::Builder::new()
        .prefix("sceneintruder-plugin-")
        .tempdir()
        .map_err(|e| anyhow::anyhow!("cannot create a temporary plugins folder: {e}"))?;
    let id = located.manifest.id.clone();
    copy_plugin(located, &dir.path().join(&id))?;
    let runtime = PluginRuntime::load(RuntimeConfig {
        plugins_dir: dir.path().to_path_buf(),
        cache_dir: None,
        limits: Limits::default(),
        plugins: BTreeMap::from([(id.clone(), operator)]),
        bundled: super::bundled_plugins(),
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot start the plugin runtime: {e}"))?;
    let report = runtime
        .reports()
        .iter()
        .find(|r| r.folder == id)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the runtime did not report on plugin {id:?}"))?;
    Ok(Isolated {
        _dir: dir,
        runtime,
        report,
    })
}

/// Write plugin.toml and the component into `folder`, laid out as the manifest says.
pub fn copy_plugin(located: &Located, folder: &Path) -> anyhow::Result<()> {
    let copy = |from: &Path, to: &Path| -> anyhow::Result<()> {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::copy(from, to).map_err(|e| {
            anyhow::anyhow!("cannot copy {} to {}: {e}", from.display(), to.display())
        })?;
        Ok(())
    };
    copy(
        &located.manifest_dir.join(MANIFEST_FILE),
        &folder.join(MANIFEST_FILE),
    )?;
    copy(&located.component, &folder.join(&located.relative))
}

/// What is wrong with a loaded (or not loaded) plugin. With `strict`, an exporter's pairs
/// the server would ignore are problems too; otherwise they are returned as warnings.
pub fn findings(isolated: &Isolated, strict: bool) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    if let Some(reason) = isolated.failure() {
        problems.push(reason.to_string());
        return (problems, warnings);
    }
    if let Some(note) = &isolated.report.trust_note {
        warnings.push(note.clone());
    }
    if isolated.report.kind == Some(PluginKind::Exporter) {
        let catalog = Catalog::build(&isolated.runtime, &ExportsConfig::default());
        let ignored = catalog.warnings.iter().cloned();
        if strict {
            problems.extend(ignored);
        } else {
            warnings.extend(ignored);
        }
        if catalog.pairs().next().is_none() {
            problems.push(format!(
                "exporter {} declares no (kind, format) pair the server can serve",
                isolated.id()
            ));
        }
    }
    (problems, warnings)
}

/// Print each problem on stderr and turn them into the command's error.
pub fn fail(what: &str, problems: Vec<String>) -> anyhow::Error {
    for problem in &problems {
        eprintln!("error: {problem}");
    }
    match problems.len() {
        1 => anyhow::anyhow!("{what}: 1 problem"),
        n => anyhow::anyhow!("{what}: {n} problems"),
    }
}

/// `plugins check`.
pub async fn check(path: &Path) -> anyhow::Result<()> {
    let what = format!("{} does not pass the check", path.display());
    let located = locate(path).map_err(|p| fail(&what, p))?;
    let isolated = load_isolated(&located, OperatorSettings::default()).await?;
    let (problems, warnings) = findings(&isolated, true);
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if !problems.is_empty() {
        return Err(fail(&what, problems));
    }
    print!("{}", summary(&located, &isolated));
    Ok(())
}

/// What a loaded plugin declares, for people.
pub fn summary(located: &Located, isolated: &Isolated) -> String {
    use std::fmt::Write as _;
    let m = &located.manifest;
    let r = &isolated.report;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ok: plugin {} ({} {}, WIT {}) loads",
        m.id, m.kind, m.version, m.wit
    );
    let mut row = |label: &str, value: &str| {
        let _ = writeln!(out, "  {label:<18}{value}");
    };
    row("id:", &m.id);
    row("kind:", m.kind.as_str());
    row("version:", &m.version.to_string());
    row("name:", &m.name);
    if !m.description.is_empty() {
        row("description:", &m.description);
    }
    let size = std::fs::metadata(&located.component)
        .map(|meta| format!(" ({} bytes)", meta.len()))
        .unwrap_or_default();
    row(
        "component:",
        &format!("{}{size}", located.component.display()),
    );
    row("sha256:", r.sha256.as_deref().unwrap_or("-"));
    row("trust:", r.trust.unwrap_or("-"));
    row("requested hosts:", &list_or_none(&r.requested_hosts));
    row("granted hosts:", &list_or_none(&r.granted_hosts));
    for (key, spec) in &m.config {
        let mut flags = Vec::new();
        if spec.secret {
            flags.push("secret".to_string());
        }
        if spec.required {
            flags.push("required".to_string());
        }
        if let Some(default) = &spec.default {
            flags.push(format!("default {default:?}"));
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" ({})", flags.join(", "))
        };
        row("setting:", &format!("{key}{flags}"));
    }
    match isolated.runtime.description(isolated.id()) {
        Some(Description::Provider(info)) => {
            row("display name:", &info.display_name);
            row("default model:", &info.default_model);
            for model in &info.models {
                row(
                    "model:",
                    &format!(
                        "{} ({}, context {}, streaming {})",
                        model.id,
                        model.display_name,
                        model.context_window,
                        if model.streaming { "yes" } else { "no" }
                    ),
                );
            }
        }
        Some(Description::Exporter(formats)) => {
            for f in formats {
                row(
                    "format:",
                    &format!(
                        "{}.{} ({}, {}, .{}, schema {})",
                        f.kind,
                        f.format,
                        f.display_name,
                        f.media_type,
                        f.file_extension,
                        f.schema_version
                    ),
                );
            }
        }
        None => {}
    }
    out
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

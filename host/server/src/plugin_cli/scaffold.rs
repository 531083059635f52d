//! `plugins new`: a standalone plugin crate from a template.
//!
//! Templates are real files under `host/server/templates/plugins/<template>/`, embedded in
//! the binary; `{{name}}` placeholders are replaced in one pass (a value is never scanned
//! again, and an unknown placeholder is left as written).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use sceneintruder_runtime::{HOST_WIT_VERSION, Origin, validate_id};

/// Which world the new plugin implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TemplateKind {
    /// An LLM provider (kind `llm-provider`) speaking OpenAI Chat Completions.
    #[value(name = "llm", alias = "llm-provider")]
    Llm,
    /// An image provider (kind `vision-provider`) speaking the OpenAI Images API.
    #[value(name = "vision", alias = "vision-provider")]
    Vision,
    /// An exporter (kind `exporter`) rendering the scene export as text.
    Exporter,
}

#[derive(Args)]
pub struct NewArgs {
    /// Template: `llm` (an LLM provider), `vision` (an image provider) or `exporter`.
    pub kind: TemplateKind,
    /// Plugin id: 1-64 of a-z 0-9 - _, starting with a letter or digit.
    pub id: String,
    /// Folder to write the crate into; it must be new or empty [default: ./<id>].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The plugin SDK's source folder [default: the SDK this binary was built from].
    #[arg(long)]
    pub sdk: Option<PathBuf>,
    /// `llm` and `vision` only: the vendor's default base URL [default:
    /// https://api.openai.com/v1].
    #[arg(long)]
    pub base_url: Option<String>,
}

/// The default vendor of the llm and vision templates.
const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Package name of the SDK.
const SDK_PACKAGE: &str = "sceneintruder-plugin-sdk";

/// The SDK source next to the source of this binary.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/sdk");

/// Files of one template: (path in the new crate, template text).
type Files = &'static [(&'static str, &'static str)];

const LLM_FILES: Files = &[
    (
        "Cargo.toml",
        include_str!("../../templates/plugins/llm/Cargo.toml.tmpl"),
    ),
    (
        "plugin.toml",
        include_str!("../../templates/plugins/llm/plugin.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../../templates/plugins/llm/lib.rs.tmpl"),
    ),
    (
        "README.md",
        include_str!("../../templates/plugins/llm/README.md.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../templates/plugins/llm/gitignore.tmpl"),
    ),
];

const VISION_FILES: Files = &[
    (
        "Cargo.toml",
        include_str!("../../templates/plugins/vision/Cargo.toml.tmpl"),
    ),
    (
        "plugin.toml",
        include_str!("../../templates/plugins/vision/plugin.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../../templates/plugins/vision/lib.rs.tmpl"),
    ),
    (
        "README.md",
        include_str!("../../templates/plugins/vision/README.md.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../templates/plugins/vision/gitignore.tmpl"),
    ),
];

const EXPORTER_FILES: Files = &[
    (
        "Cargo.toml",
        include_str!("../../templates/plugins/exporter/Cargo.toml.tmpl"),
    ),
    (
        "plugin.toml",
        include_str!("../../templates/plugins/exporter/plugin.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../../templates/plugins/exporter/lib.rs.tmpl"),
    ),
    (
        "README.md",
        include_str!("../../templates/plugins/exporter/README.md.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../templates/plugins/exporter/gitignore.tmpl"),
    ),
];

/// Longest format id an exporter may declare (the exporter template uses the plugin id).
const MAX_FORMAT_LEN: usize = 32;

/// Write the crate; prints where it is and how to build and install it.
pub fn new(args: NewArgs) -> anyhow::Result<()> {
    validate_id(&args.id).map_err(|e| anyhow::anyhow!("invalid plugin id {:?}: {e}", args.id))?;
    if super::is_bundled_id(&args.id) {
        bail!(
            "{:?} is the id of a bundled plugin; choose another id (a plugin that claims a \
             bundled id gets no stored or environment keys)",
            args.id
        );
    }
    let base_url = base_url_for(args.kind, args.base_url.as_deref())?;
    let sdk = sdk_path(args.sdk.as_deref())?;
    let files = render_crate(args.kind, &args.id, &sdk, base_url)?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.id));
    prepare_dir(&dir)?;
    for (relative, text) in &files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let shown = std::fs::canonicalize(&dir).unwrap_or(dir);
    let kind = match args.kind {
        TemplateKind::Llm => "llm-provider",
        TemplateKind::Vision => "vision-provider",
        TemplateKind::Exporter => "exporter",
    };
    println!(
        "created {kind} plugin {:?} (crate {}) in {}",
        args.id,
        crate_name(args.kind, &args.id),
        shown.display()
    );
    println!("build it, then install it into the server's plugins folder:");
    println!(
        "  cd {} && cargo build --release --target wasm32-wasip2",
        shown.display()
    );
    println!("  sceneintruder plugins install {}", shown.display());
    if let Some(note) = settings_note(args.kind, &args.id) {
        println!("{note}");
    }
    Ok(())
}

/// The base URL the template is written with: `--base-url` (llm and vision only), else the
/// default vendor's.
fn base_url_for(kind: TemplateKind, given: Option<&str>) -> anyhow::Result<&str> {
    match (kind, given) {
        (TemplateKind::Exporter, Some(_)) => {
            bail!("--base-url applies to llm and vision plugins only")
        }
        (_, given) => Ok(given.unwrap_or(DEFAULT_BASE_URL)),
    }
}

/// What to know before using a vision plugin whose id the vision settings cannot name: they
/// select provider `<name>` as the plugin `vision-<name>`.
fn settings_note(kind: TemplateKind, id: &str) -> Option<String> {
    (kind == TemplateKind::Vision && !id.starts_with(VISION_PREFIX)).then(|| {
        format!(
            "note: the server's vision settings draw provider <name> with the plugin \
             {VISION_PREFIX}<name>; to select this plugin there, change its id (plugin.toml and \
             ID in src/lib.rs) to one starting with {VISION_PREFIX}, e.g. {VISION_PREFIX}{id} \
             (provider {id}); `plugins call` works with any id"
        )
    })
}

/// The crate's files, rendered.
fn render_crate(
    kind: TemplateKind,
    id: &str,
    sdk: &Path,
    base_url: &str,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let sdk_text = sdk
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("the SDK path {} is not UTF-8", sdk.display()))?;
    let crate_name = crate_name(kind, id);
    let component = component_file(&crate_name);
    let mut vars: Vec<(&str, String)> = vec![
        ("id", id.to_string()),
        ("name", display_name(id)),
        ("crate_name", crate_name),
        ("component", component),
        ("sdk_path", toml_string(sdk_text)),
        ("wit", HOST_WIT_VERSION.to_string()),
    ];
    let files = match kind {
        TemplateKind::Llm | TemplateKind::Vision => {
            let (base_url, origin) = vendor_base_url(base_url)?;
            vars.push(("base_url", base_url));
            vars.push(("origin", origin));
            if kind == TemplateKind::Llm {
                LLM_FILES
            } else {
                VISION_FILES
            }
        }
        TemplateKind::Exporter => {
            if id.len() > MAX_FORMAT_LEN {
                bail!(
                    "an exporter's id doubles as its format id, which is at most \
                     {MAX_FORMAT_LEN} characters: choose a shorter id"
                );
            }
            vars.push(("format", id.to_string()));
            EXPORTER_FILES
        }
    };
    Ok(files
        .iter()
        .map(|(path, template)| (*path, substitute(template, &vars)))
        .collect())
}

/// Prefix of the plugin ids the server's vision settings can select.
const VISION_PREFIX: &str = "vision-";

/// The package name: `llm-<id>`, `vision-<id>` (the id itself when it already starts with
/// `vision-`) or `export-<id>` (never starts with a digit, never the SDK's own name).
pub(crate) fn crate_name(kind: TemplateKind, id: &str) -> String {
    match kind {
        TemplateKind::Llm => format!("llm-{id}"),
        TemplateKind::Vision if id.starts_with(VISION_PREFIX) => id.to_string(),
        TemplateKind::Vision => format!("{VISION_PREFIX}{id}"),
        TemplateKind::Exporter => format!("export-{id}"),
    }
}

/// The file cargo writes for a cdylib crate: `-` becomes `_`, plus `.wasm`.
pub(crate) fn component_file(crate_name: &str) -> String {
    format!("{}.wasm", crate_name.replace('-', "_"))
}

/// `my-plugin` -> `My Plugin`.
fn display_name(id: &str) -> String {
    id.split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A TOML string literal of `text`, quotes included.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The normalised base URL (no trailing `/`) and its origin; refuses what cannot be a
/// provider's base URL or would not survive being written into the templates.
fn vendor_base_url(text: &str) -> anyhow::Result<(String, String)> {
    let url = url::Url::parse(text.trim())
        .map_err(|e| anyhow::anyhow!("--base-url {text:?} is not a URL: {e}"))?;
    let origin =
        Origin::from_parsed(&url).map_err(|why| anyhow::anyhow!("--base-url {text:?}: {why}"))?;
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        bail!(
            "--base-url {text:?}: give scheme://host[:port][/path], without credentials, query or fragment"
        );
    }
    let normalised = url.as_str().trim_end_matches('/').to_string();
    if normalised
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        bail!("--base-url {text:?} contains characters that cannot be written as is");
    }
    Ok((normalised, origin.to_string()))
}

/// The SDK folder the crate depends on, absolute.
fn sdk_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let (path, hint) = match given {
        Some(path) => (path.to_path_buf(), ""),
        None => (
            PathBuf::from(BUILT_SDK),
            " (the source this binary was built from); give the SDK's folder with --sdk PATH",
        ),
    };
    let sdk = std::fs::canonicalize(&path)
        .map_err(|e| anyhow::anyhow!("the plugin SDK is not at {}{hint}: {e}", path.display()))?;
    let manifest = sdk.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        anyhow::anyhow!(
            "{} is not the plugin SDK's folder{hint}: cannot read {}: {e}",
            sdk.display(),
            manifest.display()
        )
    })?;
    let name = toml::from_str::<toml::Table>(&text)
        .ok()
        .and_then(|t| t.get("package")?.get("name")?.as_str().map(String::from));
    if name.as_deref() != Some(SDK_PACKAGE) {
        bail!(
            "{} is not the plugin SDK's folder{hint}: its Cargo.toml is not package {SDK_PACKAGE}",
            sdk.display()
        );
    }
    Ok(sdk)
}

/// A new or empty folder.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty; choose a new or empty folder with --dir",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
        }
        Err(_) if dir.exists() => bail!("{} exists and is not a folder", dir.display()),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", dir.display())),
    }
}

/// Replace every `{{key}}` of `vars` in one pass.
fn substitute(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let value = after.find("}}").and_then(|end| {
            let key = &after[..end];
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (v, end + 2))
        });
        match value {
            Some((value, consumed)) => {
                out.push_str(value);
                rest = &after[consumed..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_runtime::{Manifest, PluginKind};

    fn file<'a>(files: &'a [(&str, String)], name: &str) -> &'a str {
        files
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.as_str())
            .expect(name)
    }

    #[test]
    fn substitution_is_one_pass_and_leaves_unknown_keys() {
        let vars = [("a", "{{b}}".to_string()), ("b", "x".to_string())];
        assert_eq!(
            substitute("{{a}}-{{b}}-{{c}}-{{", &vars),
            "{{b}}-x-{{c}}-{{"
        );
    }

    #[test]
    fn the_llm_template_renders_a_valid_crate() {
        let sdk = Path::new("/opt/si sdk/plugins/sdk");
        let files =
            render_crate(TemplateKind::Llm, "acme-chat", sdk, DEFAULT_BASE_URL).expect("renders");
        for (name, text) in &files {
            for key in [
                "id",
                "name",
                "crate_name",
                "component",
                "sdk_path",
                "wit",
                "base_url",
                "origin",
            ] {
                assert!(
                    !text.contains(&format!("{{{{{key}}}}}")),
                    "{key} left in {name}"
                );
            }
        }
        let cargo: toml::Table = toml::from_str(file(&files, "Cargo.toml")).expect("Cargo.toml");
        assert_eq!(cargo["package"]["name"].as_str(), Some("llm-acme-chat"));
        assert_eq!(
            cargo["dependencies"][SDK_PACKAGE]["path"].as_str(),
            Some("/opt/si sdk/plugins/sdk")
        );
        assert!(cargo["workspace"].as_table().is_some_and(|t| t.is_empty()));
        let manifest =
            Manifest::parse(file(&files, "plugin.toml"), Path::new("/p")).expect("manifest");
        assert_eq!(manifest.id, "acme-chat");
        assert_eq!(manifest.kind, PluginKind::LlmProvider);
        assert_eq!(manifest.wit, HOST_WIT_VERSION);
        assert_eq!(manifest.component, Path::new("/p/llm_acme_chat.wasm"));
        assert_eq!(manifest.hosts[0].to_string(), "https://api.openai.com");
        assert!(manifest.config["api_key"].secret && manifest.config["api_key"].required);
        assert_eq!(
            manifest.config["base_url"].default.as_deref(),
            Some(DEFAULT_BASE_URL)
        );
        assert!(file(&files, "src/lib.rs").contains("const ID: &str = \"acme-chat\";"));
        assert!(file(&files, "README.md").contains("cargo build --release --target wasm32-wasip2"));
    }

    #[test]
    fn the_exporter_template_renders_a_valid_crate() {
        let files =
            render_crate(TemplateKind::Exporter, "plain", Path::new("/sdk"), "").expect("renders");
        let cargo: toml::Table = toml::from_str(file(&files, "Cargo.toml")).expect("Cargo.toml");
        assert_eq!(cargo["package"]["name"].as_str(), Some("export-plain"));
        let manifest =
            Manifest::parse(file(&files, "plugin.toml"), Path::new("/p")).expect("manifest");
        assert_eq!(manifest.kind, PluginKind::Exporter);
        assert_eq!(manifest.component, Path::new("/p/export_plain.wasm"));
        assert!(manifest.hosts.is_empty());
        assert!(file(&files, "src/lib.rs").contains("const FORMAT: &str = \"plain\";"));
        let long = "x".repeat(MAX_FORMAT_LEN + 1);
        assert!(render_crate(TemplateKind::Exporter, &long, Path::new("/sdk"), "").is_err());
    }

    #[test]
    fn the_vision_template_renders_a_valid_crate() {
        let sdk = Path::new("/opt/si sdk/plugins/sdk");
        let files = render_crate(
            TemplateKind::Vision,
            "acme-draw",
            sdk,
            "http://127.0.0.1:9000/v1/",
        )
        .expect("renders");
        for (name, text) in &files {
            for key in [
                "id",
                "name",
                "crate_name",
                "component",
                "sdk_path",
                "wit",
                "base_url",
                "origin",
            ] {
                assert!(
                    !text.contains(&format!("{{{{{key}}}}}")),
                    "{key} left in {name}"
                );
            }
        }
        let cargo: toml::Table = toml::from_str(file(&files, "Cargo.toml")).expect("Cargo.toml");
        assert_eq!(cargo["package"]["name"].as_str(), Some("vision-acme-draw"));
        let sdk_dep = &cargo["dependencies"][SDK_PACKAGE];
        assert_eq!(sdk_dep["path"].as_str(), Some("/opt/si sdk/plugins/sdk"));
        assert_eq!(
            sdk_dep["features"].as_array().map(Vec::as_slice),
            Some(&[toml::Value::from("vision")][..])
        );
        assert!(cargo["dependencies"].get("serde_json").is_some());
        assert!(cargo["workspace"].as_table().is_some_and(|t| t.is_empty()));

        let manifest =
            Manifest::parse(file(&files, "plugin.toml"), Path::new("/p")).expect("manifest");
        assert_eq!(manifest.id, "acme-draw");
        assert_eq!(manifest.kind, PluginKind::VisionProvider);
        assert_eq!(manifest.wit, HOST_WIT_VERSION);
        assert_eq!(manifest.component, Path::new("/p/vision_acme_draw.wasm"));
        assert_eq!(manifest.hosts.len(), 1);
        assert_eq!(manifest.hosts[0].to_string(), "http://127.0.0.1:9000");
        assert!(manifest.config["api_key"].secret && manifest.config["api_key"].required);
        assert_eq!(
            manifest.config["base_url"].default.as_deref(),
            Some("http://127.0.0.1:9000/v1")
        );
        for key in ["model", "size"] {
            let spec = &manifest.config[key];
            assert!(
                !spec.secret && !spec.required && spec.default.is_none(),
                "{key}"
            );
        }

        let lib = file(&files, "src/lib.rs");
        assert!(lib.contains("const ID: &str = \"acme-draw\";"));
        assert!(lib.contains("vision::export!(Plugin);"));
        assert!(lib.contains("imaging::"));
        let readme = file(&files, "README.md");
        assert!(readme.contains("cargo build --release --target wasm32-wasip2"));
        assert!(readme.contains("target/wasm32-wasip2/release/vision_acme_draw.wasm"));
        assert!(readme.contains("image \"a lighthouse"));
    }

    #[test]
    fn base_url_applies_to_llm_and_vision() {
        assert_eq!(
            base_url_for(TemplateKind::Llm, None).expect("ok"),
            DEFAULT_BASE_URL
        );
        assert_eq!(
            base_url_for(TemplateKind::Vision, Some("http://x/v1")).expect("ok"),
            "http://x/v1"
        );
        assert!(base_url_for(TemplateKind::Exporter, None).is_ok());
        let err = base_url_for(TemplateKind::Exporter, Some("http://x/v1")).expect_err("refused");
        assert!(err.to_string().contains("llm and vision"), "{err}");
        // A bad base URL is refused for a vision plugin as for an LLM one.
        assert!(render_crate(TemplateKind::Vision, "p", Path::new("/sdk"), "ftp://x").is_err());
    }

    /// The templates' release profile is the repository's `wasm-release` profile.
    #[test]
    fn the_release_profile_mirrors_wasm_release() {
        let root: toml::Table =
            toml::from_str(include_str!("../../../../Cargo.toml")).expect("root Cargo.toml");
        let mut expected = root["profile"]["wasm-release"]
            .as_table()
            .expect("wasm-release profile")
            .clone();
        expected.remove("inherits");
        for kind in [
            TemplateKind::Llm,
            TemplateKind::Vision,
            TemplateKind::Exporter,
        ] {
            let files =
                render_crate(kind, "p", Path::new("/sdk"), DEFAULT_BASE_URL).expect("renders");
            let cargo: toml::Table = toml::from_str(file(&files, "Cargo.toml")).expect("toml");
            assert_eq!(
                cargo["profile"]["release"].as_table(),
                Some(&expected),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            vendor_base_url("http://127.0.0.1:8000/v1/").expect("ok"),
            (
                "http://127.0.0.1:8000/v1".to_string(),
                "http://127.0.0.1:8000".to_string()
            )
        );
        assert!(vendor_base_url("ftp://x/v1").is_err());
        assert!(vendor_base_url("https://x/v1?key=1").is_err());
        assert!(vendor_base_url("https://u:p@x/v1").is_err());
        assert!(vendor_base_url("not a url").is_err());
    }

    #[test]
    fn names() {
        assert_eq!(display_name("my-cool_llm"), "My Cool Llm");
        assert_eq!(component_file("export-my-fmt"), "export_my_fmt.wasm");
        assert_eq!(crate_name(TemplateKind::Vision, "acme"), "vision-acme");
        assert_eq!(
            crate_name(TemplateKind::Vision, "vision-acme"),
            "vision-acme"
        );
        assert_eq!(
            crate_name(TemplateKind::Llm, "vision-acme"),
            "llm-vision-acme"
        );
        let note = settings_note(TemplateKind::Vision, "acme").expect("a note");
        assert!(note.contains("vision-acme"), "{note}");
        assert!(settings_note(TemplateKind::Vision, "vision-acme").is_none());
        assert!(settings_note(TemplateKind::Llm, "acme").is_none());
    }

    #[test]
    fn the_built_sdk_is_found() {
        let sdk = sdk_path(None).expect("the SDK of this source tree");
        assert!(sdk.is_absolute());
        assert!(sdk_path(Some(Path::new("/nonexistent/sdk"))).is_err());
    }
}

//! `plugins call`: one call of a plugin's world, in the server's sandbox with the server's
//! grants. Settings given with `--set` are the operator's settings (secrets among them are
//! kept from the plugin and substituted into its requests by the host), `--allow-host` the
//! operator's grants; the runtime adds the base URL's origin by its own rules.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use sceneintruder_runtime::export::RenderOptions;
use sceneintruder_runtime::llm::{
    CompletionRequest, CompletionResponse, Message, Reasoning, ResponseFormat, Role, StreamEvent,
};
use sceneintruder_runtime::{LlmProvider, OperatorSettings, PluginKind};

use super::inspect::{self, Isolated};

#[derive(Args)]
pub struct CallArgs {
    /// Crate folder, plugin folder, or component `.wasm`.
    pub plugin: PathBuf,
    /// A setting, KEY=VALUE (repeatable). Secrets such as api_key are never readable by the
    /// plugin; the host fills them into requests to the endpoint they were given for.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Grant an origin the manifest requests, scheme://host[:port] (repeatable). The
    /// manifest's default base URL and a base_url given with --set need no grant.
    #[arg(long = "allow-host", value_name = "ORIGIN")]
    pub allow_host: Vec<String>,
    #[command(subcommand)]
    pub operation: Operation,
}

#[derive(Subcommand)]
pub enum Operation {
    /// llm-provider: complete a prompt and print the answer.
    Complete(Prompt),
    /// llm-provider: stream a completion, printing the text as it arrives.
    Stream(Prompt),
    /// llm-provider: list the models the vendor offers now.
    Models,
    /// vision-provider: draw one image and write it to a file.
    Image {
        /// What to draw.
        prompt: String,
        /// Where to write the image.
        #[arg(long)]
        out: PathBuf,
        /// Model key [default: the plugin's default model].
        #[arg(long)]
        model: Option<String>,
        /// Width in pixels.
        #[arg(long, default_value_t = 512)]
        width: u32,
        /// Height in pixels.
        #[arg(long, default_value_t = 512)]
        height: u32,
        /// Negative prompt.
        #[arg(long)]
        negative: Option<String>,
        /// Seed (0: random).
        #[arg(long)]
        seed: Option<i64>,
        /// Reference image for image-to-image (PNG, JPEG or WebP).
        #[arg(long)]
        reference: Option<PathBuf>,
        /// Denoising strength 0..1 with a reference image.
        #[arg(long)]
        denoising_strength: Option<f32>,
    },
    /// exporter: render an export input (a built-in sample scene by default).
    Export {
        /// Document kind: scene, interactions or story.
        kind: String,
        /// Format id, as the plugin declares it.
        format: String,
        /// Export input JSON to render instead of the built-in sample.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Write the output to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

impl Operation {
    fn name(&self) -> &'static str {
        match self {
            Operation::Complete(_) => "complete",
            Operation::Stream(_) => "stream",
            Operation::Models => "models",
            Operation::Image { .. } => "image",
            Operation::Export { .. } => "export",
        }
    }
}

#[derive(Args)]
pub struct Prompt {
    /// The user message.
    pub prompt: String,
    /// Model [default: the plugin's default model].
    #[arg(long)]
    pub model: Option<String>,
    /// System prompt.
    #[arg(long)]
    pub system: Option<String>,
    /// Largest answer, in tokens.
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[arg(long)]
    pub temperature: Option<f32>,
}

/// The sample export input `export` renders without `--input` (kind `scene`).
const SAMPLE_INPUT: &str = include_str!("../../templates/plugins/sample/scene.input.json");

/// Deadline of one render, as the server's `[exports] timeout_secs` default.
fn export_deadline() -> Duration {
    Duration::from_secs(
        crate::domain::export::ExportsConfig::default()
            .timeout_secs
            .max(1),
    )
}

pub async fn call(args: CallArgs) -> anyhow::Result<()> {
    let mut values = std::collections::BTreeMap::new();
    for pair in &args.set {
        let (key, value) = parse_setting(pair)?;
        values.insert(key, value);
    }
    let what = format!("{} cannot be called", args.plugin.display());
    let located = inspect::locate(&args.plugin).map_err(|p| inspect::fail(&what, p))?;
    for key in values.keys() {
        if !located.manifest.config.contains_key(key) {
            eprintln!("warning: plugin.toml declares no setting {key:?}");
        }
    }
    let operator = OperatorSettings {
        values,
        allow_hosts: args.allow_host.clone(),
        sha256: None,
    };
    let isolated = inspect::load_isolated(&located, operator).await?;
    if let Some(reason) = isolated.failure() {
        bail!("plugin {} does not load: {reason}", isolated.id());
    }
    if let Some(note) = &isolated.report.trust_note {
        eprintln!("warning: {note}");
    }
    let kind = located.manifest.kind;
    match (kind, args.operation) {
        (PluginKind::LlmProvider, Operation::Complete(prompt)) => {
            complete(&llm(&isolated)?, &prompt).await
        }
        (PluginKind::LlmProvider, Operation::Stream(prompt)) => {
            stream(&llm(&isolated)?, &prompt).await
        }
        (PluginKind::LlmProvider, Operation::Models) => models(&llm(&isolated)?).await,
        (PluginKind::VisionProvider, op @ Operation::Image { .. }) => image(&isolated, op).await,
        (
            PluginKind::Exporter,
            Operation::Export {
                kind,
                format,
                input,
                out,
            },
        ) => export(&isolated, &kind, &format, input, out).await,
        (kind, op) => {
            let available = match kind {
                PluginKind::LlmProvider => "complete, stream, models",
                PluginKind::Exporter => "export",
                PluginKind::VisionProvider => "image",
                PluginKind::VideoProvider => "none yet",
            };
            bail!(
                "`{}` is not an operation of {kind} plugins (operations: {available})",
                op.name()
            )
        }
    }
}

/// `KEY=VALUE`.
fn parse_setting(pair: &str) -> anyhow::Result<(String, String)> {
    match pair.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => bail!("--set {pair:?}: expected KEY=VALUE"),
    }
}

/// The LLM client, once every required setting has a value.
fn llm(isolated: &Isolated) -> anyhow::Result<LlmProvider> {
    let llm = isolated
        .runtime
        .llm(isolated.id())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let missing = llm.missing_required();
    if !missing.is_empty() {
        let example: Vec<String> = missing.iter().map(|k| format!("--set {k}=...")).collect();
        bail!(
            "plugin {} needs {}: give {} with {}",
            isolated.id(),
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" },
            example.join(" ")
        );
    }
    Ok(llm)
}

fn request(llm: &LlmProvider, prompt: &Prompt) -> anyhow::Result<CompletionRequest> {
    let model = prompt
        .model
        .clone()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| llm.info().default_model.clone());
    if model.trim().is_empty() {
        bail!("the plugin declares no default model: give one with --model");
    }
    Ok(CompletionRequest {
        model,
        system_prompt: prompt.system.clone(),
        messages: vec![Message {
            role: Role::User,
            content: prompt.prompt.clone(),
        }],
        temperature: prompt.temperature,
        max_tokens: prompt.max_tokens,
        top_p: None,
        stop: Vec::new(),
        response_format: ResponseFormat::Text,
        reasoning: Reasoning::Default,
    })
}

/// Model, finish reason and token counts, on stderr (stdout holds only the text).
fn report_done(done: &CompletionResponse) {
    let usage = done
        .usage
        .map(|u| {
            format!(
                ", tokens: {} prompt, {} output, {} total",
                u.prompt_tokens, u.output_tokens, u.total_tokens
            )
        })
        .unwrap_or_default();
    eprintln!(
        "[model {}, finish reason {:?}{usage}]",
        done.model, done.finish_reason
    );
}

async fn complete(llm: &LlmProvider, prompt: &Prompt) -> anyhow::Result<()> {
    let req = request(llm, prompt)?;
    let done = llm
        .complete(&req, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}", done.text);
    report_done(&done);
    Ok(())
}

async fn stream(llm: &LlmProvider, prompt: &Prompt) -> anyhow::Result<()> {
    let req = request(llm, prompt)?;
    let mut events = llm
        .stream(&req, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = std::io::stdout();
    let mut wrote = false;
    while let Some(event) = events.next().await {
        match event {
            Ok(StreamEvent::Delta(text)) => {
                out.write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .context("cannot write to stdout")?;
                wrote = true;
            }
            Ok(StreamEvent::Done(done)) => {
                println!();
                report_done(&done);
                return Ok(());
            }
            Err(e) => {
                if wrote {
                    println!();
                }
                bail!("{e}");
            }
        }
    }
    bail!("the stream ended without its final event")
}

async fn models(llm: &LlmProvider) -> anyhow::Result<()> {
    let models = llm
        .list_models(None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let width = models.iter().map(|m| m.id.len()).max().unwrap_or(0);
    for m in &models {
        let context = if m.context_window == 0 {
            "context unknown".to_string()
        } else {
            format!("context {}", m.context_window)
        };
        println!("{:<width$}  {}  ({context})", m.id, m.display_name);
    }
    eprintln!("[{} models]", models.len());
    Ok(())
}

/// The built-in sample input for `kind`.
fn sample_input(kind: &str, format: &str) -> anyhow::Result<String> {
    if kind != "scene" && kind != "interactions" {
        bail!(
            "there is no built-in sample input for kind {kind:?}; give an export input with \
             --input FILE"
        );
    }
    let mut input: serde_json::Value =
        serde_json::from_str(SAMPLE_INPUT).context("the built-in sample input is not JSON")?;
    input["kind"] = kind.into();
    input["format"] = format.into();
    Ok(input.to_string())
}

/// Draw one image with a vision plugin, as the server's vision service calls it (the host
/// downloads a URL answer under the plugin's grants), and write it to `--out`.
async fn image(isolated: &Isolated, op: Operation) -> anyhow::Result<()> {
    let Operation::Image {
        prompt,
        out,
        model,
        width,
        height,
        negative,
        seed,
        reference,
        denoising_strength,
    } = op
    else {
        bail!("not an image operation");
    };
    let vision = isolated
        .runtime
        .vision(isolated.id())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let model = match model {
        Some(m) => m,
        None => match isolated.runtime.description(isolated.id()) {
            Some(sceneintruder_runtime::Description::Provider(info)) => info.default_model,
            _ => String::new(),
        },
    };
    let reference_image = match &reference {
        Some(path) => {
            let data = std::fs::read(path)
                .with_context(|| format!("cannot read the reference image {}", path.display()))?;
            let Some(content_type) = crate::domain::vision::sniff_image(&data) else {
                bail!("{} is not a PNG, JPEG or WebP image", path.display());
            };
            Some(sceneintruder_runtime::vision::ReferenceImage {
                data,
                content_type: content_type.to_string(),
            })
        }
        None => None,
    };
    let options = sceneintruder_runtime::vision::ImageOptions {
        model,
        width,
        height,
        negative_prompt: negative,
        steps: None,
        cfg_scale: None,
        sampler: None,
        seed,
        clip_skip: None,
        eta: None,
        tiling: None,
        prompt_extend: None,
        reference_image,
        denoising_strength,
    };
    let drawn = vision
        .generate_image(&prompt, &options, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let sniffed =
        crate::domain::vision::sniff_image(&drawn.bytes).unwrap_or("not a PNG, JPEG or WebP image");
    std::fs::write(&out, &drawn.bytes)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "wrote {} bytes ({sniffed}; the plugin said {}, {} x {}) to {}",
        drawn.bytes.len(),
        drawn.content_type,
        drawn.width,
        drawn.height,
        out.display()
    );
    Ok(())
}

async fn export(
    isolated: &Isolated,
    kind: &str,
    format: &str,
    input: Option<PathBuf>,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let exporter = isolated
        .runtime
        .exporter(isolated.id())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let kind = kind.trim();
    let format = format.trim().to_ascii_lowercase();
    let Some(info) = exporter.format(kind, &format).cloned() else {
        let pairs: Vec<String> = exporter
            .formats()
            .iter()
            .map(|f| format!("{}.{}", f.kind, f.format))
            .collect();
        bail!(
            "plugin {} does not render {kind}.{format}; it renders {}",
            isolated.id(),
            if pairs.is_empty() {
                "nothing".to_string()
            } else {
                pairs.join(", ")
            }
        );
    };
    let input_json = match &input {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the export input {}", path.display()))?,
        None => sample_input(kind, &format)?,
    };
    let deadline = export_deadline();
    let rendered = tokio::time::timeout(
        deadline,
        exporter.render(
            &info.kind,
            &format,
            &input_json,
            RenderOptions::default(),
            None,
        ),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "plugin {} did not finish the render within {} s",
            isolated.id(),
            deadline.as_secs()
        )
    })?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    match &out {
        Some(path) => {
            std::fs::write(path, &rendered.bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "wrote {} bytes ({}, .{}) to {}",
                rendered.bytes.len(),
                rendered.media_type,
                rendered.file_extension,
                path.display()
            );
        }
        None => {
            let mut stdout = std::io::stdout();
            stdout
                .write_all(&rendered.bytes)
                .and_then(|()| stdout.flush())
                .context("cannot write to stdout")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_input_parses_for_scene_and_interactions() {
        for kind in ["scene", "interactions"] {
            let json = sample_input(kind, "txt").expect("sample");
            let input = sceneintruder_export_document::ExportInput::from_json(&json)
                .expect("a valid export input");
            assert_eq!(input.kind, kind);
            assert_eq!(input.format, "txt");
            assert_eq!(input.characters.len(), 2);
        }
        assert!(sample_input("story", "txt").is_err());
    }

    #[test]
    fn settings_are_key_value() {
        assert_eq!(
            parse_setting("api_key=sk=1").expect("ok"),
            ("api_key".to_string(), "sk=1".to_string())
        );
        assert!(parse_setting("=x").is_err());
        assert!(parse_setting("novalue").is_err());
    }
}

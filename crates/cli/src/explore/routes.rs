//! The HTTP contract: one handler per route, every error a JSON object
//! `{"error": ..., "suggestions": [...]}` with its status.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::ValueEnum;
use featx_cam::{METHODS, Target};
use featx_viz::diagram::{self, DiagramNode};
use serde::Serialize;
use serde_json::json;

use super::engine::{EngineError, ModelInfo};
use super::guard::{self, Guard};
use super::images::{Images, UploadError};
use super::pool::{Pool, PoolError};
use crate::error::CliError;
use crate::picture::{Kind, PictureOptions, ReduceArg, Select};

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub pool: Arc<Pool>,
    pub images: Arc<Images>,
    pub nodes_json: Arc<String>,
    pub diagram: Arc<Vec<DiagramNode>>,
    pub info: Arc<ModelInfo>,
    /// Bytes the kept outputs hold now, and the limit.
    pub cache_used: Arc<AtomicUsize>,
    pub cache_limit: usize,
}

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    error: String,
    suggestions: Vec<String>,
    retry_after: Option<u32>,
}

impl ApiError {
    /// An error with no suggestions.
    pub(crate) fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            suggestions: Vec::new(),
            retry_after: None,
        }
    }

    fn bad(error: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "suggestions": self.suggestions});
        let mut response = with_type("application/json", body.to_string());
        *response.status_mut() = self.status;
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<PoolError> for ApiError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Busy => ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy: too many requests are waiting for the model",
                )
            },
            PoolError::Failed => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the computation failed unexpectedly",
            ),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NoImage(id) => {
                ApiError::new(StatusCode::NOT_FOUND, format!("no image with id '{id}'"))
            }
            EngineError::Cli(CliError::Extract(featx_extract::ExtractError::UnknownNode {
                query,
                model,
                suggestions,
            })) => ApiError {
                suggestions,
                ..ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no node or module named '{query}' in {model}"),
                )
            },
            EngineError::Cli(e) if e.exit_code() == 2 => ApiError::bad(e.to_string()),
            EngineError::Cli(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

type ApiResult = Result<Response, ApiError>;

/// A request's query parameters: never a path, never a NUL byte.
struct Params(HashMap<String, String>);

impl Params {
    fn parse(raw: Option<String>) -> Result<Self, ApiError> {
        let map: HashMap<String, String> =
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        if map
            .iter()
            .any(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::bad("a parameter contains a NUL byte"));
        }
        if map.values().any(|v| v.len() > 4096) {
            return Err(ApiError::bad("a parameter is longer than 4096 bytes"));
        }
        Ok(Params(map))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str) -> Result<String, ApiError> {
        self.get(name)
            .map(str::to_string)
            .ok_or_else(|| ApiError::bad(format!("the parameter '{name}' is required")))
    }

    fn choice<T: ValueEnum>(&self, name: &str, default: T) -> Result<T, ApiError> {
        let Some(text) = self.get(name) else {
            return Ok(default);
        };
        T::from_str(text, true).map_err(|_| {
            let names: Vec<String> = T::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
                .collect();
            ApiError {
                suggestions: names.clone(),
                ..ApiError::bad(format!(
                    "unknown {name} '{text}': one of {}",
                    names.join(", ")
                ))
            }
        })
    }

    fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
        &self,
        name: &str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ApiError> {
        let Some(text) = self.get(name) else {
            return Ok(default);
        };
        text.parse::<T>()
            .ok()
            .filter(|v| range.contains(v))
            .ok_or_else(|| {
                ApiError::bad(format!(
                    "{name} must be a number from {} to {}, not '{text}'",
                    range.start(),
                    range.end()
                ))
            })
    }
}

fn with_type(content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn json_response(value: &impl Serialize) -> ApiResult {
    let text = serde_json::to_string(value)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(with_type("application/json", text))
}

/// The router with every route behind the guard.
pub(crate) fn router(state: AppState, guard: Guard) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/style.css", get(style_css))
        .route("/api/info", get(info))
        .route("/api/nodes", get(nodes))
        .route("/api/images", get(list_images).post(upload))
        .route("/api/resolve", get(resolve))
        .route("/api/picture", get(picture))
        .route("/api/features", get(features))
        .route("/api/stats", get(stats))
        .route("/api/top5", get(top5))
        .route("/api/cam", get(cam))
        .route("/api/graph.svg", get(graph_svg))
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        .layer(middleware::from_fn_with_state(guard, guard::check))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such page or API route")
}

async fn not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "that method is not allowed here",
    )
}

/// The page may only talk to this server: no request leaves the machine.
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

async fn index() -> Response {
    let mut response = with_type(
        "text/html; charset=utf-8",
        include_str!("assets/index.html"),
    );
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

async fn app_js() -> Response {
    with_type(
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    )
}

async fn style_css() -> Response {
    with_type("text/css; charset=utf-8", include_str!("assets/style.css"))
}

async fn info(State(state): State<AppState>) -> ApiResult {
    json_response(&json!({
        "model": state.info.model,
        "weights": state.info.weights,
        "imagenet": state.info.imagenet,
        "methods": METHODS.iter().map(|m| m.name).collect::<Vec<_>>(),
        "max_upload_bytes": state.images.max_bytes,
        "cache": {
            "bytes": state.cache_used.load(Ordering::Relaxed),
            "limit": state.cache_limit,
        },
    }))
}

async fn nodes(State(state): State<AppState>) -> Response {
    with_type("application/json", state.nodes_json.as_str().to_owned())
}

async fn list_images(State(state): State<AppState>) -> ApiResult {
    json_response(&json!({ "images": state.images.list() }))
}

async fn upload(State(state): State<AppState>, headers: HeaderMap, body: Body) -> ApiResult {
    let limit = state.images.max_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the upload is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    let images = state.images.clone();
    let item = tokio::task::spawn_blocking(move || images.upload(&bytes))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the upload failed"))?
        .map_err(|e| match e {
            UploadError::TooLarge(why) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, why),
            UploadError::Invalid(why) => ApiError::bad(why),
        })?;
    json_response(&json!({ "id": item.id, "name": item.name }))
}

async fn resolve(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let params = Params::parse(raw)?;
    let node = params.required("node")?;
    let (_, name, shape) = state.pool.run(move |e| e.resolve(&node)).await??;
    json_response(&json!({ "node": name, "shape": shape }))
}

async fn picture(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let params = Params::parse(raw)?;
    let (image, node) = (params.required("image")?, params.required("node")?);
    let options = PictureOptions {
        kind: params.choice("kind", Kind::Auto)?,
        reduce: params.choice("reduce", ReduceArg::Sum)?,
        channels: params.number("channels", 16, 1..=256)?,
        select: params.choice("select", Select::Top)?,
        page: params.number("page", 0, 0..=100_000)?,
        top_k: params.number("top_k", 10, 1..=1000)?,
        alpha: params.number("alpha", 0.5, 0.0..=1.0)?,
        scale: None,
    };
    let with = params.get("with").map(str::to_string);
    let png = state
        .pool
        .run(move |e| e.picture(&image, &node, options, with.as_deref()))
        .await??;
    Ok(with_type("image/png", png))
}

async fn features(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let params = Params::parse(raw)?;
    let (image, node) = (params.required("image")?, params.required("node")?);
    let (name, npy) = state.pool.run(move |e| e.features(&image, &node)).await??;
    let mut response = with_type("application/octet-stream", npy);
    let file = featx_output::npy_file_name(&name);
    if let Ok(value) = format!("attachment; filename=\"{file}\"").parse() {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

async fn stats(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let params = Params::parse(raw)?;
    let (image, node) = (params.required("image")?, params.required("node")?);
    let stats = state.pool.run(move |e| e.stats(&image, &node)).await??;
    json_response(&stats)
}

async fn top5(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let params = Params::parse(raw)?;
    let image = params.required("image")?;
    let classes = state.pool.run(move |e| e.top5(&image)).await??;
    json_response(&json!({ "classes": classes }))
}

async fn cam(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let params = Params::parse(raw)?;
    let (image, node) = (params.required("image")?, params.required("node")?);
    let name = params.required("method")?;
    let method = featx_cam::find(&name).map_err(|_| ApiError {
        suggestions: METHODS.iter().map(|m| m.name.to_string()).collect(),
        ..ApiError::bad(format!("unknown CAM method '{name}'"))
    })?;
    let target: Target = params
        .get("target")
        .unwrap_or("top")
        .parse()
        .map_err(ApiError::bad)?;
    let png = state
        .pool
        .run(move |e| e.cam(&image, &node, method, target))
        .await??;
    Ok(with_type("image/png", png))
}

async fn graph_svg(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let params = Params::parse(raw)?;
    let fold = match params.get("fold") {
        None => None,
        Some(_) => Some(params.number("fold", 1usize, 1..=64)?),
    };
    let open: Vec<String> = params
        .get("open")
        .map(|o| o.split(',').map(str::to_string).take(10_000).collect())
        .unwrap_or_default();
    let nodes = state.diagram.clone();
    let svg =
        tokio::task::spawn_blocking(move || diagram::svg(&diagram::fold_open(&nodes, fold, &open)))
            .await
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "layout failed"))?;
    Ok(with_type("image/svg+xml", svg))
}

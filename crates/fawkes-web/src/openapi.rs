use axum::Router;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder};
use utoipa_swagger_ui::SwaggerUi;

/// The document's frame; paths and schemas are added by the routes themselves.
pub(crate) fn document() -> OpenApi {
    let components = ComponentsBuilder::new()
        .security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Fawkes API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "REST API v1 of Fawkes. Every error answers with \
                     `{\"error\": {\"code\", \"message\", \"details\"}}`.",
                ))
                .build(),
        )
        .components(Some(components))
        .build()
}

/// `/api/openapi.json` and the interactive docs at `/api/docs`, served from the binary.
pub(crate) fn docs<S: Clone + Send + Sync + 'static>(openapi: OpenApi) -> Router<S> {
    Router::from(SwaggerUi::new("/api/docs").url("/api/openapi.json", openapi)).with_state(())
}

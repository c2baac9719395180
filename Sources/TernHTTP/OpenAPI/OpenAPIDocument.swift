/// The JSON API's contract: `openapi.yaml` beside this file, embedded as JSON (by
/// scripts/generate-openapi.sh) so that the binary serves it at `GET /api/v1/openapi.json`
/// with no file next to it.
public enum OpenAPIDocument {}

/**
 * API errors: one table. Every error the API answers with has a stable code (FLOE_API_ERR_*), an HTTP
 * status, a title (Falcon's, as freezer-api answers them) and a one-line message template (`%s` are filled
 * in order). The body is freezer-api's `{"title", "description"}` plus floe's `"code"`.
 *
 * docs/api-errors.md documents every code (a test checks it). Codes are public: never reuse one for
 * another meaning; retire it instead.
 */

export interface ErrorSpec {
  status: number;
  title: string;
  message: string;
}

export const API_ERRORS = {
  /** Missing, unknown or revoked X-Auth-Token. Deliberately says nothing more. */
  FLOE_API_ERR_UNAUTHORIZED: { status: 401, title: 'Unauthorized', message: 'authentication required' },
  /** The token is valid but belongs to another project than the URL's. */
  FLOE_API_ERR_WRONG_PROJECT: { status: 403, title: 'Access Forbidden', message: 'this token is not valid for project %s' },
  /** The token's role does not allow this request. */
  FLOE_API_ERR_FORBIDDEN: { status: 403, title: 'Access Forbidden', message: 'role %s may not %s' },
  /** An agent token tried to act on another client's records. */
  FLOE_API_ERR_AGENT_SCOPE: { status: 403, title: 'Access Forbidden', message: 'this agent token acts for client %s only' },
  /** An agent token tried to change job fields other than its run status. */
  FLOE_API_ERR_AGENT_FIELDS: { status: 403, title: 'Access Forbidden', message: 'an agent may only update the run status of a job; it tried to change %s' },
  FLOE_API_ERR_NOT_FOUND: { status: 404, title: 'Not Found', message: '%s %s not found' },
  FLOE_API_ERR_NO_ROUTE: { status: 404, title: 'Not Found', message: 'no endpoint %s %s' },
  FLOE_API_ERR_EXISTS: { status: 409, title: 'Document already existing', message: '%s %s already exists' },
  /** A run report's run_id is already recorded for another job (a repeat for the same job is a 200). */
  FLOE_API_ERR_RUN_EXISTS: { status: 409, title: 'Document already existing', message: 'run %s is already recorded for job %s' },
  FLOE_API_ERR_CONFLICT: { status: 409, title: 'Conflict', message: '%s %s is being changed by another request: retry' },
  /** Not 753 as freezer-api: that is no HTTP status (many clients and proxies reject it); see docs. */
  FLOE_API_ERR_MALFORMED_JSON: { status: 400, title: 'Malformed JSON', message: 'the request body is not valid JSON: %s' },
  FLOE_API_ERR_BODY_REQUIRED: { status: 400, title: 'Bad request format', message: 'a JSON document is required in the request body' },
  FLOE_API_ERR_VALIDATION: { status: 400, title: 'Bad request format', message: '%s' },
  FLOE_API_ERR_BAD_FILTER: { status: 400, title: 'Bad request format', message: 'bad search filter: %s' },
  FLOE_API_ERR_BAD_DOCUMENT: { status: 400, title: 'Bad request format', message: '%s' },
  FLOE_API_ERR_TOO_COMPLEX: { status: 400, title: 'Bad request format', message: 'the document has more than %s keys and values' },
  FLOE_API_ERR_SESSION_TAG: { status: 400, title: 'Bad request format', message: 'requested tag value too high. Session Tag: %s Job Tag: %s' },
  FLOE_API_ERR_NOT_IN_SESSION: { status: 400, title: 'Bad request format', message: 'job %s is not in session %s' },
  FLOE_API_ERR_BODY_TOO_LARGE: { status: 413, title: 'Payload Too Large', message: 'the request body is larger than %s bytes' },
  FLOE_API_ERR_MEDIA_TYPE: { status: 415, title: 'Unsupported Media Type', message: 'only application/json is accepted, not %s' },
  FLOE_API_ERR_UNKNOWN_CLIENT: { status: 422, title: 'Unprocessable Entity', message: 'client %s is not registered in this project' },
  FLOE_API_ERR_CAPABILITY: { status: 422, title: 'Unprocessable Entity', message: 'client %s does not support %s %s' },
  FLOE_API_ERR_CENTRAL_CLIENT: { status: 403, title: 'Access Forbidden', message: 'only an admin may register a central client (is_central)' },
  /** A bug or an unexpected failure. The detail goes to the server log, never to the client. */
  FLOE_API_ERR_INTERNAL: { status: 500, title: 'Internal Server Error', message: 'an unexpected error occurred on the server' },
  FLOE_API_ERR_DB_UNAVAILABLE: { status: 503, title: 'Service Unavailable', message: 'the database is unavailable' },
} as const satisfies Record<string, ErrorSpec>;

export type ApiErrorCode = keyof typeof API_ERRORS;

/** ApiError is thrown by handlers and hooks; the app's error handler turns it into the response. */
export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly statusCode: number;
  readonly title: string;
  constructor(code: ApiErrorCode, ...args: Array<string | number>) {
    const spec: ErrorSpec = API_ERRORS[code];
    let i = 0;
    super(spec.message.replace(/%s/g, () => String(args[i++] ?? '')));
    this.name = 'ApiError';
    this.code = code;
    this.statusCode = spec.status;
    this.title = spec.title;
  }

  /** body is the JSON error document: freezer-api's title and description, plus the code. */
  body(): { title: string; description: string; code: ApiErrorCode } {
    return { title: this.title, description: this.message, code: this.code };
  }
}

/** apiError builds an ApiError (a shorter spelling for `throw apiError(...)`). */
export function apiError(code: ApiErrorCode, ...args: Array<string | number>): ApiError {
  return new ApiError(code, ...args);
}

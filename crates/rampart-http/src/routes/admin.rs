//! User management for administrators (F-USERS, F-LOCKOUT, F-REGISTER).
//!
//! | route | what |
//! |---|---|
//! | `GET /api/v1/admin/users` | every user (with lockout state) |
//! | `POST /api/v1/admin/users` | create a user |
//! | `GET /api/v1/admin/users/{id}` | one user |
//! | `POST /api/v1/admin/users/{id}/disable`, `…/enable` | disable (ends every session and token) / enable |
//! | `POST /api/v1/admin/users/{id}/unlock` | lift a lockout after failed logins |
//! | `POST /api/v1/admin/users/{id}/mfa/reset` | remove the second factor (lost device) |
//! | `PUT /api/v1/admin/users/{id}/roles`, `…/tenants`, `…/attributes` | replace them |
//! | `POST /api/v1/admin/invites`, `GET /api/v1/admin/invites` | create (code shown once) / list invites |
//!
//! Every handler requires the `admin` permission through [`require`]: a caller
//! without it gets `403 forbidden`, and an admin whose session has not passed MFA
//! (the admin role requires it by default) gets `403 mfa_required`. API tokens never
//! hold `admin` unless `api_tokens.allow_admin` is set. Every change is audited by the
//! accounts service; changes to a user's roles, tenants, attributes, second factor or
//! status end that user's sessions.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use rampart_core::identity::UserId;
use rampart_core::identity::roles::ADMIN;
use rampart_crypto::SecretString;
use rampart_identity::accounts::{Invite, NewAccount, Updated};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::account::{AccountBody, ManagedAccountBody, actor, failed, with_rotated};
use super::auth::rfc3339;
use crate::error::ApiError;
use crate::extract::auth::{Authenticated, require};
use crate::extract::{ClientMeta, Json};
use crate::state::AppState;

/// Admin routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
        .routes(routes!(unlock_user))
        .routes(routes!(reset_mfa))
        .routes(routes!(set_roles))
        .routes(routes!(set_tenants))
        .routes(routes!(set_attributes))
        .routes(routes!(list_invites, create_invite))
}

/// `POST /api/v1/admin/users`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Username: 3 to 64 characters from `a-z0-9._-` (stored lower-case).
    pub username: String,
    /// Password; omit for a user who signs in by magic link only.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub password: Option<SecretString>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Roles (each defined in `[roles]`).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Tenant ids.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// `PUT /api/v1/admin/users/{id}/roles`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoles {
    /// The new roles (each defined in `[roles]`); replaces the old ones.
    pub roles: Vec<String>,
}

/// `PUT /api/v1/admin/users/{id}/tenants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTenants {
    /// The new tenants; replaces the old ones.
    pub tenants: Vec<String>,
}

/// `PUT /api/v1/admin/users/{id}/attributes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAttributes {
    /// The new attributes; replaces the old ones.
    pub attributes: BTreeMap<String, String>,
}

/// `POST /api/v1/admin/invites`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvite {
    /// Roles the invitee gets (each defined in `[roles]`).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Tenant the invitee joins.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// An invite (never its code).
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteBody {
    /// Public id.
    pub id: String,
    /// Roles the invitee gets.
    pub roles: Vec<String>,
    /// Tenant the invitee joins.
    pub tenant: Option<String>,
    /// The admin who created it.
    pub created_by: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Expires (RFC 3339).
    pub expires_at: String,
    /// Used (RFC 3339), if it was.
    pub used_at: Option<String>,
    /// The user who used it.
    pub used_by: Option<String>,
}

impl From<Invite> for InviteBody {
    fn from(i: Invite) -> Self {
        Self {
            id: i.id,
            roles: i.roles,
            tenant: i.tenant,
            created_by: i.created_by.as_str().to_owned(),
            created_at: rfc3339(i.created_at),
            expires_at: rfc3339(i.expires_at),
            used_at: i.used_at.map(rfc3339),
            used_by: i.used_by.map(|u| u.as_str().to_owned()),
        }
    }
}

/// A new invite: the code is shown only here.
#[derive(Serialize, ToSchema)]
pub struct NewInviteBody {
    /// The invite.
    #[serde(flatten)]
    pub invite: InviteBody,
    /// The code the invitee registers with (`POST /api/v1/register`, `invite`).
    pub code: String,
}

/// The users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsersBody {
    /// Every user, by username.
    pub users: Vec<ManagedAccountBody>,
}

/// The invites.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitesBody {
    /// Every invite, newest first.
    pub invites: Vec<InviteBody>,
}

/// List users.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users",
    tag = "admin",
    responses(
        (status = 200, description = "Every user", body = UsersBody),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`forbidden`, `mfa_required`", body = super::ErrorEnvelope),
    )
)]
async fn list_users(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<axum::Json<UsersBody>, ApiError> {
    require(&state.roles, &principal, ADMIN)?;
    let users = state.accounts.users().await.map_err(failed(&state))?;
    Ok(axum::Json(UsersBody {
        users: users.into_iter().map(Into::into).collect(),
    }))
}

/// Create a user.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users",
    tag = "admin",
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = AccountBody),
        (status = 400, description = "`invalid_username`, `invalid_email`, `weak_password`, `unknown_role`, `invalid_tenant`, `invalid_attribute`", body = super::ErrorEnvelope),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`forbidden`, `mfa_required`, `csrf_failed`", body = super::ErrorEnvelope),
        (status = 409, description = "`username_taken`, `email_taken`, `not_initialized`", body = super::ErrorEnvelope),
    )
)]
async fn create_user(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    client: ClientMeta,
    Json(body): Json<CreateUser>,
) -> Result<Response, ApiError> {
    require(&state.roles, &principal, ADMIN)?;
    let account = state
        .accounts
        .create_user(
            &actor(&principal, &client),
            NewAccount {
                username: body.username,
                password: body.password,
                email: body.email,
                display_name: body.display_name,
                roles: body.roles,
                tenants: body.tenants,
                attributes: body.attributes,
            },
        )
        .await
        .map_err(failed(&state))?;
    Ok((StatusCode::CREATED, axum::Json(AccountBody::from(account))).into_response())
}

/// One user.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = ManagedAccountBody),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`forbidden`, `mfa_required`", body = super::ErrorEnvelope),
        (status = 404, description = "`not_found`", body = super::ErrorEnvelope),
    )
)]
async fn get_user(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<axum::Json<ManagedAccountBody>, ApiError> {
    require(&state.roles, &principal, ADMIN)?;
    let managed = state
        .accounts
        .managed(&user_id(&id)?)
        .await
        .map_err(failed(&state))?;
    Ok(axum::Json(managed.into()))
}

/// Disable a user: every session, refresh token and API token of theirs stops
/// working. An admin cannot disable themselves.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/disable",
    tag = "admin",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Disabled", body = AccountBody),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`forbidden`, `mfa_required`, `csrf_failed`", body = super::ErrorEnvelope),
        (status = 404, description = "`not_found`", body = super::ErrorEnvelope),
        (status = 409, description = "`cannot_disable_self`", body = super::ErrorEnvelope),
    )
)]
async fn disable_user(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    client: ClientMeta,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&state.roles, &principal, ADMIN)?;
    let updated = state
        .accounts
        .set_disabled(&actor(&principal, &client), &user_id(&id)?, true)
        .await
        .map_err(failed(&state))?;
    updated_response(updated)
}

/// Enable a disabled user.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/enable",
    tag = "admin",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Enabled", body = AccountBody),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`forbidden`, `mfa_required`, `csrf_failed`", body = super::ErrorEnvelope),
        (status = 404, description = "`not_found`", body = super::ErrorEnvelope),
    )
)]
async fn enable_user(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    client: ClientMeta,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&state.roles, &principal, ADMIN)?;
    let updated = state
        .accounts
        .set_disabled(&actor(&principal, &client), &user_id(&id)?, false)
        .await
        .map_err(failed(&state))?;
    updated_response(updated)
}

/// Lift the user's lockout after failed logins (client-address lockouts expire on
/// their own).
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/unlock",
    tag = "admin",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Unlocked", body = ManagedAccountBody),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`forbidden`, `mfa_required`, `csrf_failed`", body = super::ErrorEnvelope),
        (status = 404, description = "`not_found`", body = super::ErrorEnvelope),
    )
)]
async fn unlock_user(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    client: ClientMeta,
    Path(id): Path<String>,
) -> Result<axum::Json<ManagedAccountBody>, ApiError> {
    require(&state.roles, &principal, ADMIN)?;
    let id = user_id(&id)?;
    state
        .accounts
        .unlock(&actor(&principal, &client), &id)
        .await
        .map_err(failed(&state))?;
    let managed = state.accounts.managed(&id).await.map_err(failed(&state))?;
    Ok(axum::Json(managed.into()))
}

/// Remove the user's second factor and recovery codes.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/mfa/reset",
    tag = "admin",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Reset", body = AccountBody),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`forbidden`, `mfa_required`, `csrf_failed`", body = super::ErrorEnvelope),
        (status = 404, description = "`not_found`", body = super::ErrorEnvelope),
    )
)]
async fn reset_mfa(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    client: ClientMeta,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&state.roles, &principal, ADMIN)?;
    let updated = state
        .accounts
        .reset_mfa(&actor(&principal, &client), &user_id(&id)?)
        .await
        .map_err(failed(&state))?;
    updated_response(updated)
}

/// Replace the user's roles.
#[utoipa::path(
    put,
    path = "/api/v1/admin/users/{id}/roles",
    tag = "admin",
    params(("id" = String, Path, description = "User id")),
    request_body = SetRoles,
    responses(
        (status = 200, description = "Changed", body = AccountBody),
        (status = 400, description = "`unknown_role`", body = super::ErrorEnvelope),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`forbidden`, `mfa_required`, `csrf_failed`", body = super::ErrorEnvelope),
        (status = 404, description = "`not_found`", body = super::ErrorEnvelope),
    )
)]
async fn set_roles(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    client: ClientMeta,
    Path(id): Path<String>,
    Json(body): Json<SetRoles>,
) -> Result<Response, ApiError> {
    require(&state.roles, &principal, ADMIN)?;
    let updated = state
        .accounts
        .set_roles(&actor(&principal, &client), &user_id(&id)?, body.roles)
        .await
        .map_err(failed(&state))?;
    updated_response(updated)
}

/// Replace the user's tenants.
#[utoipa::path(
    put,
    path = "/api/v1/admin/users/{id}/tenants",
    tag = "admin",
    params(("id" = String, Path, description = "User id")),
    request_body = SetTenants,
    responses(
        (status = 200, description = "Changed", body = AccountBody),
        (status = 400, description = "`invalid_tenant`", body = super::ErrorEnvelope),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`forbidden`, `mfa_required`, `csrf_failed`", body = super::ErrorEnvelope),
        (status = 404, description = "`not_found`", body = super::ErrorEnvelope),
    )
)]
async fn set_tenants(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    client: ClientMeta,
    Path(id): Path<String>,
    Json(body): Json<SetTenants>,
) -> Result<Response, ApiError> {
    require(&state.roles, &principal, ADMIN)?;
    let updated = state
        .accounts
        .set_tenants(&actor(&principal, &client), &user_id(&id)?, body.tenants)
        .await
        .map_err(failed(&state))?;
    updated_response(updated)
}

/// Replace the user's attributes.
#[utoipa::path(
    put,
    path = "/api/v1/admin/users/{id}/attributes",
    tag = "admin",
    params(("id" = String, Path, description = "User id")),
    request_body = SetAttributes,
    responses(
        (status = 200, description = "Changed", body = AccountBody),
        (status = 400, description = "`invalid_attribute`", body = super::ErrorEnvelope),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`forbidden`, `mfa_required`, `csrf_failed`", body = super::ErrorEnvelope),
        (status = 404, description = "`not_found`", body = super::ErrorEnvelope),
    )
)]
async fn set_attributes(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    client: ClientMeta,
    Path(id): Path<String>,
    Json(body): Json<SetAttributes>,
) -> Result<Response, ApiError> {
    require(&state.roles, &principal, ADMIN)?;
    let updated = state
        .accounts
        .set_attributes(&actor(&principal, &client), &user_id(&id)?, body.attributes)
        .await
        .map_err(failed(&state))?;
    updated_response(updated)
}

/// List invites.
#[utoipa::path(
    get,
    path = "/api/v1/admin/invites",
    tag = "admin",
    responses(
        (status = 200, description = "Every invite", body = InvitesBody),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`forbidden`, `mfa_required`", body = super::ErrorEnvelope),
    )
)]
async fn list_invites(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<axum::Json<InvitesBody>, ApiError> {
    require(&state.roles, &principal, ADMIN)?;
    let invites = state.accounts.invites().await.map_err(failed(&state))?;
    Ok(axum::Json(InvitesBody {
        invites: invites.into_iter().map(Into::into).collect(),
    }))
}

/// Create an invite: single use, valid for `auth.invite_ttl`. The code is in this
/// answer only.
#[utoipa::path(
    post,
    path = "/api/v1/admin/invites",
    tag = "admin",
    request_body = CreateInvite,
    responses(
        (status = 201, description = "Created", body = NewInviteBody),
        (status = 400, description = "`unknown_role`, `invalid_tenant`", body = super::ErrorEnvelope),
        (status = 401, description = "`unauthenticated`", body = super::ErrorEnvelope),
        (status = 403, description = "`forbidden`, `mfa_required`, `csrf_failed`", body = super::ErrorEnvelope),
    )
)]
async fn create_invite(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    client: ClientMeta,
    Json(body): Json<CreateInvite>,
) -> Result<Response, ApiError> {
    require(&state.roles, &principal, ADMIN)?;
    let created = state
        .accounts
        .create_invite(&actor(&principal, &client), body.roles, body.tenant)
        .await
        .map_err(failed(&state))?;
    let body = NewInviteBody {
        invite: created.invite.into(),
        code: created.code.expose_secret().to_owned(),
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// A user id from the path; a malformed one names no user.
fn user_id(text: &str) -> Result<UserId, ApiError> {
    UserId::parse(text).map_err(|_| ApiError::not_found())
}

/// The changed account, with the admin's re-issued session cookie if they changed
/// their own account.
fn updated_response(updated: Updated) -> Result<Response, ApiError> {
    let Updated { account, rotated } = updated;
    with_rotated(
        axum::Json(AccountBody::from(account)).into_response(),
        rotated,
    )
}

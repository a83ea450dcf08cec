//! Admin API errors and their HTTP form.

use crate::token::TokenError;
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why an admin request failed. The body is
/// `{"error": "<code>", "message": "<detail>"}`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum AdminError {
    /// No `Authorization: Bearer …` header.
    #[error("missing bearer token")]
    MissingToken,
    /// The token did not verify.
    #[error("invalid token: {0}")]
    BadToken(TokenError),
    /// The token verified but has no admin grant.
    #[error("token lacks the admin grant")]
    NotAdmin,
    /// The admin token is scoped to another room.
    #[error("admin token is for another room")]
    OtherRoom,
    /// No such room.
    #[error("no such room")]
    RoomNotFound,
    /// No such participant in the room.
    #[error("no such participant in this room")]
    ParticipantNotFound,
}

impl AdminError {
    fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::BadToken(_) => StatusCode::UNAUTHORIZED,
            Self::NotAdmin | Self::OtherRoom => StatusCode::FORBIDDEN,
            Self::RoomNotFound | Self::ParticipantNotFound => StatusCode::NOT_FOUND,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::MissingToken | Self::BadToken(_) => "unauthorized",
            Self::NotAdmin | Self::OtherRoom => "forbidden",
            Self::RoomNotFound | Self::ParticipantNotFound => "not_found",
        }
    }
}

#[derive(Serialize)]
struct Body {
    error: &'static str,
    message: String,
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Json(Body {
            error: self.code(),
            message: self.to_string(),
        });
        if status == StatusCode::UNAUTHORIZED {
            (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
        } else {
            (status, body).into_response()
        }
    }
}

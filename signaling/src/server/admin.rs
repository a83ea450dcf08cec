//! The admin REST API. Every route needs `Authorization: Bearer <token>`
//! whose claims carry `grants.admin`. A token with an empty room is a
//! server-wide admin; one that names a room only administers that room.

use super::Signaling;
use super::error::AdminError;
use super::rooms::{RoomError, RoomSummary};
use crate::proto::ParticipantInfo;
use crate::token::Claims;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{StatusCode, header, request::Parts};
use axum::routing::{delete, get};
use axum::{Json, Router};

/// The admin routes.
pub(crate) fn routes() -> Router<Signaling> {
    Router::new()
        .route("/admin/rooms", get(list_rooms))
        .route("/admin/rooms/{room}", delete(close_room))
        .route("/admin/rooms/{room}/participants", get(list_participants))
        .route(
            "/admin/rooms/{room}/participants/{participant_id}",
            delete(remove_participant),
        )
}

/// Verified admin claims.
struct Admin(Claims);

impl Admin {
    fn may_manage(&self, room: &str) -> bool {
        self.0.room.is_empty() || self.0.room == room
    }

    fn check_room(&self, room: &str) -> Result<(), AdminError> {
        if self.may_manage(room) {
            Ok(())
        } else {
            Err(AdminError::OtherRoom)
        }
    }
}

impl FromRequestParts<Signaling> for Admin {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, sig: &Signaling) -> Result<Self, AdminError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(AdminError::MissingToken)?;
        let (scheme, token) = value.split_once(' ').ok_or(AdminError::MissingToken)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AdminError::MissingToken);
        }
        let claims = sig
            .shared
            .config
            .keys
            .verify(token.trim())
            .map_err(AdminError::BadToken)?;
        if !claims.grants.admin {
            return Err(AdminError::NotAdmin);
        }
        Ok(Admin(claims))
    }
}

async fn list_rooms(admin: Admin, State(sig): State<Signaling>) -> Json<Vec<RoomSummary>> {
    let mut rooms = sig.shared.rooms.list();
    rooms.retain(|r| admin.may_manage(&r.name));
    Json(rooms)
}

async fn list_participants(
    admin: Admin,
    State(sig): State<Signaling>,
    Path(room): Path<String>,
) -> Result<Json<Vec<ParticipantInfo>>, AdminError> {
    admin.check_room(&room)?;
    sig.shared
        .rooms
        .participants(&room)
        .map(Json)
        .ok_or(AdminError::RoomNotFound)
}

async fn remove_participant(
    admin: Admin,
    State(sig): State<Signaling>,
    Path((room, participant_id)): Path<(String, String)>,
) -> Result<StatusCode, AdminError> {
    admin.check_room(&room)?;
    match sig.shared.rooms.remove(&room, &participant_id) {
        Ok(()) => {
            tracing::info!(participant = %participant_id, "removed by admin");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(RoomError::NoRoom) => Err(AdminError::RoomNotFound),
        Err(_) => Err(AdminError::ParticipantNotFound),
    }
}

async fn close_room(
    admin: Admin,
    State(sig): State<Signaling>,
    Path(room): Path<String>,
) -> Result<StatusCode, AdminError> {
    admin.check_room(&room)?;
    sig.shared
        .rooms
        .close(&room)
        .map(|_| StatusCode::NO_CONTENT)
        .map_err(|_| AdminError::RoomNotFound)
}

//! Who is calling: the signed-in user, its org, its session and its roles.
//! The catalog authorizes a [`Principal`]; how the gate found and remembers
//! it is the gate's business.

/// The caller of a signed-in request, shared by every call of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub session_id: String,
    pub user_id: i64,
    pub user_name: String,
    pub org_uid: String,
    pub roles: Vec<String>,
}

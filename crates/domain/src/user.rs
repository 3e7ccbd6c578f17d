//! Console users of a tenant, their roles and what each role may do.
//!
//! A role is a fixed set of [`Permission`]s (the matrix in README.md); handlers ask for a
//! permission, never for a role, so the matrix is the one place that decides.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::email::Email;
use crate::id::{TenantId, UserId};
use crate::time::Timestamp;

/// One thing a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Browse leads, organizations, visitor profiles and journeys.
    ReadRecords,
    /// Read the analytical reports (never personal).
    ReadReports,
    /// Create, change and delete leads and organizations.
    EditRecords,
    /// Export the reports dataset (no personal data).
    ExportReports,
    /// Export datasets holding personal data (leads, visitors, journeys, organizations).
    ExportPersonalData,
    /// Answer data-subject requests (access, rectification, erasure…).
    AnswerDataSubjectRequests,
    /// Read and verify the audit log.
    ReadAudit,
    /// Create users, change their roles, reset their MFA.
    ManageUsers,
    /// Create, rotate and delete API clients.
    ManageClients,
    /// Set retention per dataset.
    ManageRetention,
    /// Start a Data Act switch (the whole tenant leaves).
    ManageSwitching,
}

impl Permission {
    pub const ALL: &[Permission] = &[
        Self::ReadRecords,
        Self::ReadReports,
        Self::EditRecords,
        Self::ExportReports,
        Self::ExportPersonalData,
        Self::AnswerDataSubjectRequests,
        Self::ReadAudit,
        Self::ManageUsers,
        Self::ManageClients,
        Self::ManageRetention,
        Self::ManageSwitching,
    ];
}

/// A console user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Analyst,
    Viewer,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}; use owner, admin, analyst or viewer")]
pub struct RoleError(String);

impl Role {
    pub const ALL: &[Role] = &[Self::Owner, Self::Admin, Self::Analyst, Self::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Analyst => "analyst",
            Self::Viewer => "viewer",
        }
    }

    /// The permission matrix. Personal-data export is its own permission: analysts read
    /// records and export reports, but taking personal data out needs an admin or owner.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Self::Owner => Permission::ALL,
            Self::Admin => &[
                ReadRecords,
                ReadReports,
                EditRecords,
                ExportReports,
                ExportPersonalData,
                AnswerDataSubjectRequests,
                ReadAudit,
                ManageUsers,
                ManageClients,
                ManageRetention,
            ],
            Self::Analyst => &[ReadRecords, ReadReports, EditRecords, ExportReports],
            Self::Viewer => &[ReadRecords, ReadReports],
        }
    }

    pub fn can(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }

    /// Whether a user of this role may give `other` to someone: only owners make owners, so an
    /// admin cannot raise anyone (or themselves) above admin.
    pub fn may_assign(self, other: Role) -> bool {
        self.can(Permission::ManageUsers) && (self == Self::Owner || other != Self::Owner)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = RoleError;
    fn from_str(text: &str) -> Result<Self, RoleError> {
        Self::ALL.iter().copied().find(|role| role.as_str() == text).ok_or_else(|| RoleError(text.to_string()))
    }
}

/// A console user. The password hash, TOTP secret and sign-in counters are the store's and the
/// console's business and are not part of the entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: Email,
    pub role: Role,
    /// Whether TOTP is set up; until it is, a signed-in user can do nothing but enrol.
    pub mfa_enrolled: bool,
    pub created_at: Timestamp,
}

/// A password good enough to hash: at least [`Password::MIN_CHARS`] characters, at most
/// [`Password::MAX_BYTES`] bytes (hashing megabytes would be a denial of service).
#[derive(Clone)]
pub struct Password(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is too short: use at least 12 characters (a passphrase of a few words is good)")]
    TooShort,
    #[error("the password is too long: at most 1024 bytes")]
    TooLong,
}

impl Password {
    pub const MIN_CHARS: usize = 12;
    pub const MAX_BYTES: usize = 1024;

    pub fn parse(text: &str) -> Result<Self, PasswordError> {
        if text.len() > Self::MAX_BYTES {
            Err(PasswordError::TooLong)
        } else if text.chars().count() < Self::MIN_CHARS {
            Err(PasswordError::TooShort)
        } else {
            Ok(Self(text.to_string()))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permission_matrix_is_as_documented() {
        use Permission::*;
        let table = [
            (ReadRecords, [true, true, true, true]),
            (ReadReports, [true, true, true, true]),
            (EditRecords, [true, true, true, false]),
            (ExportReports, [true, true, true, false]),
            (ExportPersonalData, [true, true, false, false]),
            (AnswerDataSubjectRequests, [true, true, false, false]),
            (ReadAudit, [true, true, false, false]),
            (ManageUsers, [true, true, false, false]),
            (ManageClients, [true, true, false, false]),
            (ManageRetention, [true, true, false, false]),
            (ManageSwitching, [true, false, false, false]),
        ];
        assert_eq!(table.len(), Permission::ALL.len(), "every permission is in the table");
        for (permission, expected) in table {
            for (role, allowed) in Role::ALL.iter().zip(expected) {
                assert_eq!(role.can(permission), allowed, "{role} / {permission:?}");
            }
        }
    }

    #[test]
    fn only_owners_and_admins_manage_users_and_only_owners_make_owners() {
        assert!(Role::Owner.may_assign(Role::Owner));
        assert!(Role::Admin.may_assign(Role::Admin));
        assert!(!Role::Admin.may_assign(Role::Owner));
        assert!(!Role::Analyst.may_assign(Role::Viewer));
        assert!(!Role::Viewer.may_assign(Role::Viewer));
    }

    #[test]
    fn roles_parse_by_name_only() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
        }
        assert!("Owner".parse::<Role>().is_err());
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn passwords_need_twelve_characters_and_hide_themselves() {
        assert_eq!(Password::parse("short").unwrap_err(), PasswordError::TooShort);
        assert_eq!(Password::parse("ääääääääääää").unwrap().expose().chars().count(), 12);
        assert!(Password::parse(&"x".repeat(1025)).is_err());
        assert_eq!(format!("{:?}", Password::parse("correct horse battery").unwrap()), "Password([redacted])");
    }
}

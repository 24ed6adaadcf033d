//! The ACL's errors, with Redis's texts.

use super::RuleError;

/// ACL SETUSER refused (the reply's text after `ERR `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetUserError {
    #[error("Unmatched parenthesis in acl selector starting at '{0}'.")]
    UnmatchedParen(String),
    #[error("Error in ACL SETUSER modifier '{op}': {}", .why.message())]
    Rule { op: String, why: RuleError },
}

/// A `user` directive of the config file refused (Redis's
/// `ACLLoadConfiguredUsers`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigUserError {
    #[error("Error in user declaration '{0}': Duplicate user found. A user can only be defined once in config files")]
    Duplicate(String),
    #[error("Spaces not allowed in ACL usernames")]
    Spaces,
    #[error("Error in user declaration '{0}': Unmatched parenthesis in acl selector")]
    UnmatchedParen(String),
    #[error("Error loading ACL rule '{op}' for the user named '{user}': {}", .why.message())]
    Rule {
        op: String,
        user: String,
        why: RuleError,
    },
}

/// An ACL file refused as a whole (Redis's `ACLLoadFromFile`): every
/// problem found, then Redis's closing warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFileError {
    pub problems: Vec<AclFileProblem>,
}

impl std::fmt::Display for AclFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in &self.problems {
            write!(f, "{p}")?;
        }
        f.write_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        )
    }
}

impl std::error::Error for AclFileError {}

/// One problem of an ACL file; each text ends as Redis joins them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclFileProblem {
    #[error("{file}:{line} should start with user keyword followed by the username. ")]
    NoUserKeyword { file: String, line: usize },
    #[error("'{file}:{line}: username '{name}' contains invalid characters. ")]
    BadUsername {
        file: String,
        line: usize,
        name: String,
    },
    #[error("WARNING: Duplicate user '{name}' found on line {line}. ")]
    Duplicate { name: String, line: usize },
    #[error("{file}:{line}: Unmatched parenthesis in selector definition.")]
    UnmatchedParen { file: String, line: usize },
    #[error("{file}:{line}: Error in applying operation '{op}': {}. ", .why.message())]
    Operation {
        file: String,
        line: usize,
        op: String,
        why: RuleError,
    },
    #[error("{file}:{line}: {}. ", .why.message())]
    Rule {
        file: String,
        line: usize,
        why: RuleError,
    },
}

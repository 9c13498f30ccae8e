//! Consul's ACL core, free of any store: the rules language ([`rules`]), the compiled
//! [`Authorizer`] that answers "may this token do X on Y" ([`authorizer`]), and the builtin
//! templated policies and service/node identities that expand into rules ([`templated`]).
//!
//! Flow: each policy's rules text is parsed once into a [`Policy`]; the policies of a token
//! (its own, its roles', its identities' and templated policies' rendered rules) are compiled
//! together into one [`Authorizer`], which the HTTP layer asks on every request.

pub mod authmethod;
pub mod authorizer;
pub mod rules;
mod syntax;
pub mod templated;

pub use authorizer::{Authorizer, Decision, DefaultPolicy, PermissionDenied};
pub use rules::{AccessLevel, Policy, Resource, Rule, RulesError};

/// The longest policy, role and auth method names Consul accepts (`acl/validation.go`).
pub const POLICY_NAME_MAX: usize = 128;
pub const ROLE_NAME_MAX: usize = 256;
pub const AUTH_METHOD_NAME_MAX: usize = 128;

/// Whether `name` is a valid policy, role or auth method name of at most `max` bytes:
/// letters, digits, `-` and `_` (Consul's `IsValidPolicyName` and its siblings).
pub fn is_valid_name(name: &str, max: usize) -> bool {
    (1..=max).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Role names may be twice as long as policy names, as in Consul.
    #[test]
    fn names_follow_consuls_limits() {
        let long = "r".repeat(200);
        assert!(is_valid_name(&long, ROLE_NAME_MAX));
        assert!(!is_valid_name(&long, POLICY_NAME_MAX));
        assert!(!is_valid_name("", ROLE_NAME_MAX));
        assert!(!is_valid_name("a b", POLICY_NAME_MAX));
        assert!(is_valid_name("Web_app-1", AUTH_METHOD_NAME_MAX));
    }
}

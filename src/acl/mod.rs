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

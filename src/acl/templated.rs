//! Consul's builtin templated policies (`builtin/service`, `builtin/node`, ...) and the
//! service and node identities, which expand into the same rules as the service and node
//! templates.

/// A builtin templated policy, as `/v1/acl/templated-policies` lists it.
#[derive(Debug, PartialEq, Eq)]
pub struct TemplatedPolicy {
    pub name: &'static str,
    pub id: &'static str,
    pub description: &'static str,
    /// The JSON schema of its variables; empty when it takes none.
    pub schema: &'static str,
    /// Rules text with `{{.Name}}` where the `name` variable goes.
    template: &'static str,
}

/// The variables of a templated policy (Consul's `ACLTemplatedPolicyVariables`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateVariables {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("acl templated policy does not exist: {0}")]
    NotFound(String),
    #[error(
        "service identity {0:?} has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed"
    )]
    InvalidServiceName(String),
    // Consul's text has the two spaces.
    #[error(
        "node identity {0:?}  has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed"
    )]
    InvalidNodeName(String),
    /// The variables do not match the schema; rendered as Consul's multierror list.
    #[error("1 error occurred:\n\t* {0}\n\n")]
    Schema(&'static str),
}

/// Service, node and api-gateway templates take a required, non-empty `name`.
const NAME_SCHEMA: &str = r##"{
  "type": "object",
  "properties": {
    "name": { "type": "string", "$ref": "#/definitions/min-length-one" }
  },
  "required": ["name"],
  "definitions": {
    "min-length-one": {
      "type": "string",
      "minLength": 1
    }
  }
}"##;

const SERVICE: TemplatedPolicy = TemplatedPolicy {
    name: "builtin/service",
    id: "00000000-0000-0000-0000-000000000003",
    description: "Gives the token or role permissions to register a service and discover services in the Consul catalog. It also gives the specified service's sidecar proxy the permission to discover and route traffic to other services.",
    schema: NAME_SCHEMA,
    template: "\nservice \"{{.Name}}\" {\n\tpolicy = \"write\"\n}\nservice \"{{.Name}}-sidecar-proxy\" {\n\tpolicy = \"write\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}\nnode_prefix \"\" {\n\tpolicy = \"read\"\n}",
};

const NODE: TemplatedPolicy = TemplatedPolicy {
    name: "builtin/node",
    id: "00000000-0000-0000-0000-000000000004",
    description: "Gives the token or role permissions for a register an agent/node into the catalog. A node is typically a consul agent but can also be a physical server, cloud instance or a container.",
    schema: NAME_SCHEMA,
    template: "\nnode \"{{.Name}}\" {\n\tpolicy = \"write\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}",
};

/// Consul's builtin templated policies, by template ID. (ID ...0007 was
/// `builtin/workload-identity`, which Consul has since removed.)
pub const TEMPLATED_POLICIES: [TemplatedPolicy; 6] = [
    SERVICE,
    NODE,
    TemplatedPolicy {
        name: "builtin/dns",
        id: "00000000-0000-0000-0000-000000000005",
        description: "Gives the token or role permissions for the Consul DNS to query services in the network.",
        schema: "",
        template: "\nnode_prefix \"\" {\n\tpolicy = \"read\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}\nquery_prefix \"\" {\n\tpolicy = \"read\"\n}",
    },
    TemplatedPolicy {
        name: "builtin/nomad-server",
        id: "00000000-0000-0000-0000-000000000006",
        description: "Gives the token or role permissions required for integration with a nomad server.",
        schema: "",
        template: "\nacl = \"write\"\nagent_prefix \"\" {\n  policy = \"read\"\n}\nnode_prefix \"\" {\n  policy = \"read\"\n}\nservice_prefix \"\" {\n  policy = \"write\"\n}",
    },
    TemplatedPolicy {
        name: "builtin/api-gateway",
        id: "00000000-0000-0000-0000-000000000008",
        description: "Gives the token or role permissions for a Consul api gateway",
        schema: NAME_SCHEMA,
        template: "mesh = \"read\"\nnode_prefix \"\" {\n\tpolicy = \"read\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}\nservice \"{{.Name}}\" {\n\tpolicy = \"write\"\n}",
    },
    TemplatedPolicy {
        name: "builtin/nomad-client",
        id: "00000000-0000-0000-0000-000000000009",
        description: "Gives the token or role permissions required for integration with a nomad client.",
        schema: "",
        template: "agent_prefix \"\" {\n  policy = \"read\"\n}\nnode_prefix \"\" {\n  policy = \"read\"\n}\nservice_prefix \"\" {\n  policy = \"write\"\n}\nkey_prefix \"\" {\n  policy = \"read\"\n}",
    },
];

impl TemplatedPolicy {
    /// Looks a builtin template up by name (`builtin/service`).
    pub fn by_name(name: &str) -> Result<&'static TemplatedPolicy, TemplateError> {
        TEMPLATED_POLICIES
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| TemplateError::NotFound(name.to_string()))
    }

    /// Checks the variables as Consul's `ValidateTemplatedPolicy` does: templates without a
    /// schema take anything; the others need an object with a non-empty `name`, which for
    /// service and node templates must also be a valid identity name.
    pub fn validate(&self, variables: Option<&TemplateVariables>) -> Result<(), TemplateError> {
        if self.schema.is_empty() {
            return Ok(());
        }
        let Some(variables) = variables else {
            return Err(TemplateError::Schema(
                "Invalid type. Expected: object, given: null",
            ));
        };
        let name = &variables.name;
        if self.name == SERVICE.name && !is_valid_identity_name(name) {
            return Err(TemplateError::InvalidServiceName(name.clone()));
        }
        if self.name == NODE.name && !is_valid_identity_name(name) {
            return Err(TemplateError::InvalidNodeName(name.clone()));
        }
        // Consul serializes the variables with `omitempty`, so an empty name is a missing one.
        if name.is_empty() {
            return Err(TemplateError::Schema("name is required"));
        }
        Ok(())
    }

    /// The rules text with its `{{.Name}}` placeholders, as `/v1/acl/templated-policies`
    /// shows it.
    pub fn template(&self) -> &'static str {
        self.template
    }

    /// The rules text of this template with its variables, after [`Self::validate`].
    pub fn render(&self, variables: Option<&TemplateVariables>) -> Result<String, TemplateError> {
        self.validate(variables)?;
        let name = variables.map_or("", |v| v.name.as_str());
        Ok(self.template.replace("{{.Name}}", name))
    }
}

/// Service and node identity names: 1 to 256 lowercase letters, digits, `-` and `_`,
/// starting and ending with a letter or digit (Consul's `IsValidServiceIdentityName`).
pub fn is_valid_identity_name(name: &str) -> bool {
    let inner = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (1..=256).contains(&name.len())
        && name.chars().all(inner)
        && edge(name.chars().next())
        && edge(name.chars().last())
}

/// The rules a service identity grants: write on the service and its sidecar proxy, read
/// on all services and nodes (the `builtin/service` template). The name must be valid.
pub fn service_identity_rules(service: &str) -> String {
    SERVICE.template.replace("{{.Name}}", service)
}

/// The rules a node identity grants: write on the node, read on all services (the
/// `builtin/node` template). The name must be valid.
pub fn node_identity_rules(node: &str) -> String {
    NODE.template.replace("{{.Name}}", node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{AccessLevel, Authorizer, DefaultPolicy, Policy, Resource};

    fn vars(name: &str) -> TemplateVariables {
        TemplateVariables { name: name.into() }
    }

    use crate::acl::rules::test_rule as rule;

    #[test]
    fn every_template_renders_valid_rules() {
        for template in &TEMPLATED_POLICIES {
            let rules = template.render(Some(&vars("web"))).unwrap();
            assert!(!rules.contains("{{"), "{}", template.name);
            Policy::parse(&rules).unwrap_or_else(|e| panic!("{}: {e}", template.name));
            assert_eq!(TemplatedPolicy::by_name(template.name).unwrap(), template);
        }
    }

    #[test]
    fn service_template_renders_as_consul() {
        let rules = TemplatedPolicy::by_name("builtin/service")
            .unwrap()
            .render(Some(&vars("api")))
            .unwrap();
        assert_eq!(
            rules,
            "\nservice \"api\" {\n\tpolicy = \"write\"\n}\nservice \"api-sidecar-proxy\" {\n\tpolicy = \"write\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}\nnode_prefix \"\" {\n\tpolicy = \"read\"\n}"
        );
        assert_eq!(rules, service_identity_rules("api"));
    }

    #[test]
    fn api_gateway_and_nomad_templates() {
        let gateway = TemplatedPolicy::by_name("builtin/api-gateway")
            .unwrap()
            .render(Some(&vars("gw")))
            .unwrap();
        let policy = Policy::parse(&gateway).unwrap();
        assert_eq!(policy.global(Resource::Mesh), Some(AccessLevel::Read));
        assert!(policy
            .rules
            .contains(&rule(Resource::Service, "gw", false, AccessLevel::Write)));

        // Templates without variables ignore them.
        let server = TemplatedPolicy::by_name("builtin/nomad-server").unwrap();
        assert_eq!(
            server.render(None).unwrap(),
            server.render(Some(&vars("x"))).unwrap()
        );
        let policy = Policy::parse(&server.render(None).unwrap()).unwrap();
        assert_eq!(policy.global(Resource::Acl), Some(AccessLevel::Write));
    }

    #[test]
    fn variables_are_checked() {
        let service = TemplatedPolicy::by_name("builtin/service").unwrap();
        let node = TemplatedPolicy::by_name("builtin/node").unwrap();
        let gateway = TemplatedPolicy::by_name("builtin/api-gateway").unwrap();
        assert_eq!(
            service.render(Some(&vars("Web"))).unwrap_err().to_string(),
            "service identity \"Web\" has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed"
        );
        assert_eq!(
            node.validate(Some(&vars("-n"))).unwrap_err().to_string(),
            "node identity \"-n\"  has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed"
        );
        assert_eq!(
            gateway.validate(Some(&vars(""))).unwrap_err().to_string(),
            "1 error occurred:\n\t* name is required\n\n"
        );
        assert_eq!(
            gateway.validate(None).unwrap_err(),
            TemplateError::Schema("Invalid type. Expected: object, given: null")
        );
        // Only service and node names are identity names.
        assert!(gateway.validate(Some(&vars("Gateway 1"))).is_ok());
        assert_eq!(
            TemplatedPolicy::by_name("builtin/nope")
                .unwrap_err()
                .to_string(),
            "acl templated policy does not exist: builtin/nope"
        );
    }

    #[test]
    fn identity_names() {
        for good in ["a", "web", "web-1", "a_b", "0"] {
            assert!(is_valid_identity_name(good), "{good}");
        }
        for bad in ["", "-a", "a-", "_a", "Web", "a b", "a.b", &"a".repeat(257)] {
            assert!(!is_valid_identity_name(bad), "{bad}");
        }
    }

    #[test]
    fn identities_expand_to_their_grants() {
        let policies = [
            Policy::parse(&service_identity_rules("web")).unwrap(),
            Policy::parse(&node_identity_rules("n1")).unwrap(),
        ];
        let authz = Authorizer::new(&policies, DefaultPolicy::Deny);
        assert!(authz.service_write("web").is_allow());
        assert!(authz.service_write("web-sidecar-proxy").is_allow());
        assert!(!authz.service_write("db").is_allow());
        assert!(authz.service_read("db").is_allow());
        assert!(authz.node_read("n2").is_allow());
        assert!(authz.node_write("n1").is_allow());
        assert!(!authz.node_write("n2").is_allow());
        // A service identity reads its own intentions (service write derives intention read).
        assert!(authz.intention_read("web").is_allow());
        assert!(!authz.intention_write("web").is_allow());
        assert!(!authz.key_read("x").is_allow());
    }
}

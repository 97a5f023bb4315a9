//! Choosing the Entra ID token credential, explicitly.
//!
//! `azure_identity` 1.x has no `DefaultAzureCredential`, so Berth decides itself, in this order, and
//! logs the choice (never a secret):
//!
//! 1. **Managed identity** when asked for (`<setting>__credential=managedidentity`) or when running
//!    in Azure with an identity endpoint (`IDENTITY_ENDPOINT`/`MSI_ENDPOINT`, as App Service,
//!    Functions and Container Apps set). User-assigned when `__clientId` or `AZURE_CLIENT_ID` is
//!    set, system-assigned otherwise.
//! 2. **Workload identity** when `AZURE_FEDERATED_TOKEN_FILE` is set (AKS), with `AZURE_TENANT_ID`
//!    and `AZURE_CLIENT_ID`.
//! 3. **Client secret** when `AZURE_CLIENT_SECRET` (or `__clientSecret`) is set, with the tenant and
//!    client ids.
//! 4. **Managed identity, user-assigned** when only a client id is set (a VM with a user-assigned
//!    identity, the usual `AZURE_CLIENT_ID` convention).
//! 5. **Developer tools** (Azure CLI, then Azure Developer CLI) otherwise: a developer machine.
//!
//! The ARM client uses the same chooser for `https://management.azure.com/.default`; storage uses
//! it for `https://storage.azure.com/.default` with its connection's `__*` settings overlaid.

use super::connection::{ClientSecret, IdentitySettings, StorageAuth, StorageConnection};
use azure_core::credentials::TokenCredential;
use azure_identity::{
    ClientSecretCredential, DeveloperToolsCredential, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Which credential [`choose`] picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// The resource's system-assigned managed identity.
    SystemAssignedManagedIdentity,
    /// A user-assigned managed identity, by client id.
    UserAssignedManagedIdentity,
    /// Kubernetes workload identity (a federated token file).
    WorkloadIdentity,
    /// A service principal with a client secret.
    ClientSecret,
    /// Azure CLI or Azure Developer CLI on a developer machine.
    DeveloperTools,
}

impl CredentialKind {
    /// A stable name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::SystemAssignedManagedIdentity => "managed-identity-system-assigned",
            CredentialKind::UserAssignedManagedIdentity => "managed-identity-user-assigned",
            CredentialKind::WorkloadIdentity => "workload-identity",
            CredentialKind::ClientSecret => "client-secret",
            CredentialKind::DeveloperTools => "developer-tools",
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything the choice depends on, read once from settings. `Debug` hides the secret.
#[derive(Debug, Clone, Default)]
pub struct CredentialSettings {
    /// Use the managed identity whatever else is set (`__credential=managedidentity`).
    pub managed_identity: bool,
    /// Running where a managed identity endpoint exists (`IDENTITY_ENDPOINT` or `MSI_ENDPOINT`).
    pub in_azure: bool,
    /// `__clientId` or `AZURE_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `__tenantId` or `AZURE_TENANT_ID`.
    pub tenant_id: Option<String>,
    /// `__clientSecret` or `AZURE_CLIENT_SECRET`.
    pub client_secret: Option<ClientSecret>,
    /// `AZURE_FEDERATED_TOKEN_FILE`.
    pub federated_token_file: Option<PathBuf>,
}

/// Why no credential could be built.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// A variable the chosen credential needs is unset.
    #[error("{kind} credential needs `{variable}` to be set")]
    Missing {
        /// The credential being built.
        kind: CredentialKind,
        /// The unset variable.
        variable: &'static str,
    },
    /// The SDK refused to build the credential.
    #[error("building the {kind} credential failed")]
    Build {
        /// The credential being built.
        kind: CredentialKind,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
}

impl CredentialSettings {
    /// Reads the `AZURE_*` and identity-endpoint variables through `lookup`, then overlays a storage
    /// connection's `__credential`, `__clientId`, `__tenantId` and `__clientSecret` when given.
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
        connection: Option<&IdentitySettings>,
    ) -> Self {
        let var = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut settings = Self {
            managed_identity: false,
            in_azure: var("IDENTITY_ENDPOINT").is_some() || var("MSI_ENDPOINT").is_some(),
            client_id: var("AZURE_CLIENT_ID"),
            tenant_id: var("AZURE_TENANT_ID"),
            client_secret: var("AZURE_CLIENT_SECRET").map(ClientSecret::new),
            federated_token_file: var("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from),
        };
        if let Some(c) = connection {
            settings.managed_identity = c.managed_identity;
            if c.client_id.is_some() {
                settings.client_id = c.client_id.clone();
            }
            if c.tenant_id.is_some() {
                settings.tenant_id = c.tenant_id.clone();
            }
            if c.client_secret.is_some() {
                settings.client_secret = c.client_secret.clone();
            }
        }
        settings
    }

    /// The kind [`choose`] will build (pure: no I/O), or what is missing for it.
    pub fn kind(&self) -> Result<CredentialKind, CredentialError> {
        let managed = |s: &Self| {
            if s.client_id.is_some() {
                CredentialKind::UserAssignedManagedIdentity
            } else {
                CredentialKind::SystemAssignedManagedIdentity
            }
        };
        if self.managed_identity || self.in_azure {
            return Ok(managed(self));
        }
        let kind = if self.federated_token_file.is_some() {
            CredentialKind::WorkloadIdentity
        } else if self.client_secret.is_some() {
            CredentialKind::ClientSecret
        } else if self.client_id.is_some() {
            return Ok(CredentialKind::UserAssignedManagedIdentity);
        } else {
            return Ok(CredentialKind::DeveloperTools);
        };
        if self.tenant_id.is_none() {
            return Err(CredentialError::Missing {
                kind,
                variable: "AZURE_TENANT_ID",
            });
        }
        if self.client_id.is_none() {
            return Err(CredentialError::Missing {
                kind,
                variable: "AZURE_CLIENT_ID",
            });
        }
        Ok(kind)
    }
}

/// A built credential and what kind it is.
pub type Chosen = (Arc<dyn TokenCredential>, CredentialKind);

/// Builds the credential the settings call for and logs which one it is. Building does no network
/// I/O; the first token request does.
pub fn choose(settings: &CredentialSettings) -> Result<Chosen, CredentialError> {
    let kind = settings.kind()?;
    let build = |source: azure_core::Error| CredentialError::Build {
        kind,
        source: source.into(),
    };
    let credential: Arc<dyn TokenCredential> = match kind {
        CredentialKind::SystemAssignedManagedIdentity
        | CredentialKind::UserAssignedManagedIdentity => {
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: settings.client_id.clone().map(UserAssignedId::ClientId),
                ..Default::default()
            };
            ManagedIdentityCredential::new(Some(options)).map_err(build)?
        }
        CredentialKind::WorkloadIdentity => {
            let options = WorkloadIdentityCredentialOptions {
                client_id: settings.client_id.clone(),
                tenant_id: settings.tenant_id.clone(),
                token_file_path: settings.federated_token_file.clone(),
                ..Default::default()
            };
            WorkloadIdentityCredential::new(Some(options)).map_err(build)?
        }
        CredentialKind::ClientSecret => {
            let (Some(tenant), Some(client), Some(secret)) = (
                settings.tenant_id.as_deref(),
                settings.client_id.clone(),
                settings.client_secret.as_ref(),
            ) else {
                // `kind()` returned ClientSecret only with all three present.
                return Err(CredentialError::Missing {
                    kind,
                    variable: "AZURE_CLIENT_SECRET",
                });
            };
            ClientSecretCredential::new(tenant, client, secret.0.clone(), None).map_err(build)?
        }
        CredentialKind::DeveloperTools => DeveloperToolsCredential::new(None).map_err(build)?,
    };
    tracing::info!(
        credential.kind = kind.as_str(),
        credential.client_id = settings.client_id.as_deref().unwrap_or(""),
        "chose token credential"
    );
    Ok((credential, kind))
}

/// The credential an identity-based storage connection needs (its `__*` settings overlaid on the
/// `AZURE_*` variables read through `lookup`), or `None` for Shared Key and SAS connections.
pub fn for_connection(
    connection: &StorageConnection,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Chosen>, CredentialError> {
    match &connection.auth {
        StorageAuth::Identity(identity) => {
            choose(&CredentialSettings::from_lookup(lookup, Some(identity))).map(Some)
        }
        StorageAuth::SharedKey { .. } | StorageAuth::Sas(_) => Ok(None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(
        vars: &[(&str, &str)],
        connection: Option<&IdentitySettings>,
    ) -> CredentialSettings {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CredentialSettings::from_lookup(&|k| map.get(k).cloned(), connection)
    }

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const CLIENT: &str = "11111111-2222-3333-4444-555555555555";

    #[test]
    fn order_of_choice() {
        let kind = |vars: &[(&str, &str)]| settings(vars, None).kind().unwrap();
        assert_eq!(kind(&[]), CredentialKind::DeveloperTools);
        assert_eq!(
            kind(&[("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token")]),
            CredentialKind::SystemAssignedManagedIdentity
        );
        assert_eq!(
            kind(&[("MSI_ENDPOINT", "http://x"), ("AZURE_CLIENT_ID", CLIENT)]),
            CredentialKind::UserAssignedManagedIdentity
        );
        assert_eq!(
            kind(&[
                ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
                ("AZURE_TENANT_ID", TENANT),
                ("AZURE_CLIENT_ID", CLIENT),
                ("AZURE_CLIENT_SECRET", "s3cr3t"),
            ]),
            CredentialKind::WorkloadIdentity
        );
        assert_eq!(
            kind(&[
                ("AZURE_TENANT_ID", TENANT),
                ("AZURE_CLIENT_ID", CLIENT),
                ("AZURE_CLIENT_SECRET", "s3cr3t"),
            ]),
            CredentialKind::ClientSecret
        );
        assert_eq!(
            kind(&[("AZURE_CLIENT_ID", CLIENT)]),
            CredentialKind::UserAssignedManagedIdentity
        );
    }

    #[test]
    fn connection_settings_overlay_the_environment() {
        let forced = IdentitySettings {
            managed_identity: true,
            client_id: Some(CLIENT.into()),
            ..Default::default()
        };
        let s = settings(
            &[
                ("AZURE_TENANT_ID", TENANT),
                ("AZURE_CLIENT_ID", "other"),
                ("AZURE_CLIENT_SECRET", "s3cr3t"),
            ],
            Some(&forced),
        );
        assert_eq!(
            s.kind().unwrap(),
            CredentialKind::UserAssignedManagedIdentity
        );
        assert_eq!(s.client_id.as_deref(), Some(CLIENT));
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }

    #[test]
    fn missing_ids_are_named() {
        let err = settings(&[("AZURE_CLIENT_SECRET", "s3cr3t")], None)
            .kind()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "client-secret credential needs `AZURE_TENANT_ID` to be set"
        );
        let err = settings(
            &[
                ("AZURE_FEDERATED_TOKEN_FILE", "/t"),
                ("AZURE_TENANT_ID", TENANT),
            ],
            None,
        )
        .kind()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "workload-identity credential needs `AZURE_CLIENT_ID` to be set"
        );
    }

    #[test]
    fn only_identity_connections_get_a_credential() {
        let vars: HashMap<&str, &str> = HashMap::from([
            ("AzureWebJobsStorage__accountName", "berthdata"),
            ("AzureWebJobsStorage__credential", "managedidentity"),
        ]);
        let lookup = |k: &str| vars.get(k).map(|v| v.to_string());
        let identity = StorageConnection::from_settings("AzureWebJobsStorage", &lookup)
            .unwrap()
            .unwrap();
        let (_, kind) = for_connection(&identity, &lookup).unwrap().unwrap();
        assert_eq!(kind, CredentialKind::SystemAssignedManagedIdentity);
        let dev = StorageConnection::development_storage("AzureWebJobsStorage");
        assert!(for_connection(&dev, &lookup).unwrap().is_none());
    }

    #[test]
    fn every_kind_builds_without_network() {
        let token = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(token.path(), "header.payload.signature").unwrap();
        let token_path = token.path().to_str().unwrap().to_owned();
        let cases: Vec<(Vec<(&str, &str)>, CredentialKind)> = vec![
            (vec![], CredentialKind::DeveloperTools),
            (
                vec![("MSI_ENDPOINT", "http://127.0.0.1:9/")],
                CredentialKind::SystemAssignedManagedIdentity,
            ),
            (
                vec![("AZURE_CLIENT_ID", CLIENT)],
                CredentialKind::UserAssignedManagedIdentity,
            ),
            (
                vec![
                    ("AZURE_FEDERATED_TOKEN_FILE", token_path.as_str()),
                    ("AZURE_TENANT_ID", TENANT),
                    ("AZURE_CLIENT_ID", CLIENT),
                ],
                CredentialKind::WorkloadIdentity,
            ),
            (
                vec![
                    ("AZURE_TENANT_ID", TENANT),
                    ("AZURE_CLIENT_ID", CLIENT),
                    ("AZURE_CLIENT_SECRET", "s3cr3t"),
                ],
                CredentialKind::ClientSecret,
            ),
        ];
        for (vars, expected) in cases {
            let (_credential, kind) = choose(&settings(&vars, None)).unwrap();
            assert_eq!(kind, expected);
        }
    }
}

//! Volumes: `azureFile`, `emptyDir`, `secret`, `secretReference` and `gitRepo`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::secret::Secret;

/// `Volume`: exactly one of the kinds is set.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// The volume's name, referred to by `volumeMounts`.
    pub name: String,
    /// An Azure Files share.
    pub azure_file: Option<AzureFileVolume>,
    /// A scratch directory shared by the group's containers (any JSON, `{}` in practice).
    pub empty_dir: Option<serde_json::Value>,
    /// File name → base64 content; answered as `{}`.
    pub secret: Option<BTreeMap<String, Secret>>,
    /// File name → secret reference name (Key Vault); not resolvable by the emulator.
    pub secret_reference: Option<BTreeMap<String, String>>,
    /// A git repository cloned into the volume; not emulated.
    pub git_repo: Option<GitRepoVolume>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureFileVolume {
    pub share_name: String,
    /// Mount the share read-only for every container.
    pub read_only: Option<bool>,
    pub storage_account_name: String,
    /// The account key; never echoed.
    pub storage_account_key: Option<Secret>,
    /// A reference to a `secretReferences` entry.
    pub storage_account_key_reference: Option<String>,
    /// The client id of a user-assigned identity with access to the share (the ARM schema and one
    /// example spell it `userAssignedIdentityClientId`; both are accepted).
    #[serde(
        default,
        alias = "userAssignedIdentityClientId",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_managed_identity_client_id: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitRepoVolume {
    /// The target directory name.
    pub directory: Option<String>,
    /// The repository URL.
    pub repository: String,
    /// The commit.
    pub revision: Option<String>,
}

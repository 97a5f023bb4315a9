//! The api-versions ACI publishes for `Microsoft.ContainerInstance/containerGroups`, and what each
//! one's answers carry.
//!
//! Source: the public `Azure/azure-rest-api-specs` repository,
//! `specification/containerinstance/resource-manager/Microsoft.ContainerInstance/ContainerInstance/`:
//! the tags of its `readme.md` and its `stable/<version>/` and `preview/<version>/` folders. Every
//! one is accepted; any other answers `400 NoRegisteredProviderFound`, as ARM does.
//!
//! The emulator's model is the newest swagger's. Versions differ by optional properties added over
//! time, so an answer for an older version leaves out the group properties that version does not
//! define (`FIELDS`); everything else is answered to every version. Where a property's first
//! version was not checked against that version's swagger, the table names the earliest version it
//! can have appeared in: a client ignores a property it does not know, but would lose one it knows.

use crate::model::ContainerGroup;

/// Every published api-version, oldest first.
pub const API_VERSIONS: [&str; 28] = [
    "2017-08-01-preview",
    "2017-10-01-preview",
    "2017-12-01-preview",
    "2018-02-01-preview",
    "2018-04-01",
    "2018-06-01",
    "2018-09-01",
    "2018-10-01",
    "2019-12-01",
    "2020-11-01",
    "2021-03-01",
    "2021-07-01",
    "2021-09-01",
    "2021-10-01",
    "2022-09-01",
    "2022-10-01-preview",
    "2023-02-01-preview",
    "2023-05-01",
    "2024-05-01-preview",
    "2024-09-01-preview",
    "2024-10-01-preview",
    "2024-11-01-preview",
    "2025-09-01",
    "2026-05-01",
    "2026-06-01-preview",
    "2026-07-01",
    "2026-08-01-preview",
    "2026-09-01-preview",
];

/// A group property that not every version defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// `properties.sku`.
    Sku,
    /// `properties.initContainers`.
    InitContainers,
    /// `properties.encryptionProperties`.
    EncryptionProperties,
    /// `zones` (on the resource).
    Zones,
    /// `properties.subnetIds` (older versions had `networkProfile`, which the emulator does not
    /// model).
    SubnetIds,
    /// `properties.extensions`.
    Extensions,
    /// `properties.confidentialComputeProperties`.
    ConfidentialComputeProperties,
    /// `properties.priority`.
    Priority,
    /// `properties.secretReferences`.
    SecretReferences,
    /// `properties.identityAcls`.
    IdentityAcls,
    /// `properties.containerGroupProfile`.
    ContainerGroupProfile,
    /// `properties.standbyPoolProfile` and `properties.isCreatedFromStandbyPool`.
    StandbyPool,
}

/// Each optional property with the first version that defines it. Checked against the swaggers of
/// 2019-12-01 (has `sku`, `initContainers`, `encryptionProperties`; no `zones`, `subnetIds`),
/// 2021-10-01 (has `zones`, `subnetIds`), 2023-05-01 (has `extensions`, `confidentialComputeProperties`,
/// `priority`; none of the later ones) and 2022-10-01-preview and 2024-05-01-preview (their
/// official examples use confidential, priority and extension groups, and container group profiles
/// and standby pools).
const FIELDS: [(Field, &str); 12] = [
    (Field::Sku, "2019-12-01"),
    (Field::InitContainers, "2019-12-01"),
    (Field::EncryptionProperties, "2019-12-01"),
    (Field::Zones, "2020-11-01"),
    (Field::SubnetIds, "2020-11-01"),
    (Field::Extensions, "2022-10-01-preview"),
    (Field::ConfidentialComputeProperties, "2022-10-01-preview"),
    (Field::Priority, "2022-10-01-preview"),
    (Field::SecretReferences, "2024-05-01-preview"),
    (Field::IdentityAcls, "2024-05-01-preview"),
    (Field::ContainerGroupProfile, "2024-05-01-preview"),
    (Field::StandbyPool, "2024-05-01-preview"),
];

/// Shapes an answer for `version`: drops the properties that version does not define. Versions
/// compare by their date (`2024-05-01-preview` comes after `2023-05-01`).
pub fn shape(version: &str, group: &mut ContainerGroup) {
    let date = date_of(version);
    for (field, since) in FIELDS {
        if date >= date_of(since) {
            continue;
        }
        let properties = &mut group.properties;
        match field {
            Field::Sku => properties.sku = None,
            Field::InitContainers => properties.init_containers = None,
            Field::EncryptionProperties => properties.encryption_properties = None,
            Field::Zones => group.zones = None,
            Field::SubnetIds => properties.subnet_ids = None,
            Field::Extensions => properties.extensions = None,
            Field::ConfidentialComputeProperties => {
                properties.confidential_compute_properties = None
            }
            Field::Priority => properties.priority = None,
            Field::SecretReferences => properties.secret_references = None,
            Field::IdentityAcls => properties.identity_acls = None,
            Field::ContainerGroupProfile => properties.container_group_profile = None,
            Field::StandbyPool => {
                properties.standby_pool_profile = None;
                properties.is_created_from_standby_pool = None;
            }
        }
    }
}

/// `YYYY-MM-DD` of a version (`-preview` dropped); ISO dates compare as strings.
fn date_of(version: &str) -> &str {
    version.get(..10).unwrap_or(version)
}

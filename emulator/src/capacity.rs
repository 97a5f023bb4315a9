//! ACI's capacity conditions, as the fault knobs ask for them (`Faults::out_of_capacity`,
//! `capacity_rate`, `sku_not_available`, `spot_eviction_rate`, `spot_evict_nth`): the refusals of
//! a create, worded as ACI and ARM word them. Evictions themselves are a lifecycle input
//! (`Input::Evicted`).
//!
//! - No capacity: `409 ServiceUnavailable`, "The requested resource is not available in the
//!   location '…' at this moment. Please retry with a different resource request or in another
//!   location. Resource requested: '2' CPU '4' GB memory 'Linux' OS" (Microsoft's ACI
//!   troubleshooting article on this error).
//! - SKU not offered: `409 SkuNotAvailable`, in ARM's wording of that error ("The requested tier
//!   for resource '…' is currently not available in location '…' for subscription '…'. Please
//!   try another tier or deploy to a different location."). The status is the emulator's
//!   choice: Microsoft's articles give the code and message, not the status.

use axum::http::StatusCode;

use crate::error::ArmError;
use crate::faults::Refusal;
use crate::model::ContainerGroup;

/// The error a create of `spec` (resource `resource_id`) in `location` is refused with.
pub fn refused(
    refusal: Refusal,
    spec: &ContainerGroup,
    resource_id: &str,
    subscription: &str,
    location: &str,
) -> ArmError {
    match refusal {
        Refusal::OutOfCapacity => {
            let containers = &spec.properties.containers;
            let requests = || {
                containers
                    .iter()
                    .filter_map(|c| c.properties.resources.as_ref())
                    .map(|r| &r.requests)
            };
            let cpu: f64 = requests().map(|r| r.cpu).sum();
            let memory: f64 = requests().map(|r| r.memory_in_gb).sum();
            let os = spec.properties.os_type.map_or("Linux", |os| os.as_str());
            ArmError::new(
                StatusCode::CONFLICT,
                "ServiceUnavailable",
                format!(
                    "The requested resource is not available in the location '{location}' at this moment. Please retry with a different resource request or in another location. Resource requested: '{cpu}' CPU '{memory}' GB memory '{os}' OS"
                ),
            )
        }
        Refusal::SkuNotAvailable => ArmError::new(
            StatusCode::CONFLICT,
            "SkuNotAvailable",
            format!(
                "The requested tier for resource '{resource_id}' is currently not available in location '{location}' for subscription '{subscription}'. Please try another tier or deploy to a different location."
            ),
        ),
    }
}

//! # ACI emulator
//!
//! Speaks the ARM REST API of `Microsoft.ContainerInstance/containerGroups` and runs each group's
//! containers as local processes. Built in the emulator issue.

//! Long-running operations behind `Azure-AsyncOperation`: which group and attempt each one is
//! about. The newest ones are kept (a bounded number), their status is read from the group while
//! their attempt is the group's current one, and frozen when a later update, start, stop or delete
//! replaces an attempt that had ended, so that an operation that ended keeps its status.

use std::collections::{HashMap, VecDeque};

use time::OffsetDateTime;

use crate::lifecycle::{Failure, Provisioning};
use crate::record::GroupKey;

/// How many operations are remembered.
const KEPT: usize = 10_000;

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// PUT (create or update).
    Put,
    /// POST start.
    Start,
    /// POST restart.
    Restart,
    /// DELETE (with a delete delay).
    Delete,
}

#[derive(Debug, Clone)]
pub struct Operation {
    /// The group.
    pub key: GroupKey,
    /// The group's resource id.
    pub resource_id: String,
    /// What it does.
    pub kind: OpKind,
    /// The group generation it started.
    pub generation: u64,
    /// When it began.
    pub started: OffsetDateTime,
    /// How its attempt ended (`Succeeded` or `Failed`), once a later one replaced it.
    pub frozen: Option<(Provisioning, Option<Failure>)>,
}

/// The remembered operations.
#[derive(Debug, Default)]
pub struct Operations {
    by_id: HashMap<String, Operation>,
    order: VecDeque<String>,
    by_group: HashMap<GroupKey, Vec<String>>,
}

impl Operations {
    /// Remembers an operation and returns its id.
    pub fn add(&mut self, operation: Operation) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        if self.order.len() >= KEPT
            && let Some(old) = self.order.pop_front()
            && let Some(gone) = self.by_id.remove(&old)
            && let Some(ids) = self.by_group.get_mut(&gone.key)
        {
            ids.retain(|kept| *kept != old);
            if ids.is_empty() {
                self.by_group.remove(&gone.key);
            }
        }
        self.order.push_back(id.clone());
        self.by_group
            .entry(operation.key.clone())
            .or_default()
            .push(id.clone());
        self.by_id.insert(id.clone(), operation);
        id
    }

    /// Freezes the outcome of the group's operations of attempt `generation`, which ended as
    /// `provisioning` (with `failure`), before a later attempt replaces it.
    pub fn freeze(
        &mut self,
        key: &GroupKey,
        generation: u64,
        provisioning: Provisioning,
        failure: Option<&Failure>,
    ) {
        for id in self.by_group.get(key).into_iter().flatten() {
            if let Some(operation) = self.by_id.get_mut(id)
                && operation.generation == generation
                && operation.kind != OpKind::Delete
                && operation.frozen.is_none()
            {
                operation.frozen = Some((provisioning, failure.cloned()));
            }
        }
    }

    /// Finds an operation.
    pub fn get(&self, id: &str) -> Option<&Operation> {
        self.by_id.get(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(name: &str, generation: u64) -> Operation {
        Operation {
            key: GroupKey::new("sub", "rg", name),
            resource_id: format!("/subscriptions/sub/resourceGroups/rg/providers/x/{name}"),
            kind: OpKind::Put,
            generation,
            started: OffsetDateTime::now_utc(),
            frozen: None,
        }
    }

    #[test]
    fn freezing_keeps_only_that_attempts_outcome() {
        let mut operations = Operations::default();
        let first = operations.add(operation("job", 1));
        let second = operations.add(operation("job", 2));
        let other = operations.add(operation("other", 1));
        operations.freeze(
            &GroupKey::new("sub", "rg", "job"),
            1,
            Provisioning::Succeeded,
            None,
        );
        let frozen = |id: &str| operations.get(id).unwrap().frozen.clone();
        assert_eq!(frozen(&first), Some((Provisioning::Succeeded, None)));
        assert_eq!(frozen(&second), None);
        assert_eq!(frozen(&other), None);
    }

    #[test]
    fn the_oldest_operations_are_forgotten_with_their_index() {
        let mut operations = Operations::default();
        let oldest = operations.add(operation("old", 1));
        for _ in 0..KEPT {
            operations.add(operation("busy", 1));
        }
        assert!(operations.get(&oldest).is_none());
        assert!(
            !operations
                .by_group
                .contains_key(&GroupKey::new("sub", "rg", "old"))
        );
        assert_eq!(operations.by_id.len(), KEPT);
    }
}

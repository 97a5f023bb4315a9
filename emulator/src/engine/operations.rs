//! Long-running operations behind `Azure-AsyncOperation`: which group and attempt each one is
//! about. The newest ones are kept (a bounded number), their status is read from the group.

use std::collections::{HashMap, VecDeque};

use time::OffsetDateTime;

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

/// One operation.
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
}

/// The remembered operations.
#[derive(Debug, Default)]
pub struct Operations {
    by_id: HashMap<String, Operation>,
    order: VecDeque<String>,
}

impl Operations {
    /// Remembers an operation and returns its id.
    pub fn add(&mut self, operation: Operation) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        if self.order.len() >= KEPT
            && let Some(old) = self.order.pop_front()
        {
            self.by_id.remove(&old);
        }
        self.order.push_back(id.clone());
        self.by_id.insert(id.clone(), operation);
        id
    }

    /// Finds an operation.
    pub fn get(&self, id: &str) -> Option<&Operation> {
        self.by_id.get(id)
    }
}

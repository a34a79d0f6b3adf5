//! The guard against launching twice for one original, read in batches as the cycle goes.

use std::collections::BTreeMap;
use std::sync::Arc;

use spotswap_core::Instance;

use crate::Aws;

/// Our launches replacing the originals a cycle is about to replace, read in batches of 200
/// (EC2's most values in one filter) in plan order. [`LaunchGuard::prefetch`] reads them one
/// after another in the background, so only a cycle's first launches wait for a read: a
/// single read of every batch up front held all launches back for each batch's round trip.
#[derive(Debug, Clone)]
pub(crate) struct LaunchGuard {
    aws: Aws,
    batch_of: Arc<BTreeMap<String, usize>>,
    batches: Arc<[GuardBatch]>,
}

#[derive(Debug)]
struct GuardBatch {
    originals: Vec<String>,
    /// `None` when the read failed: each launch of the batch then reads its own.
    found: tokio::sync::OnceCell<Option<BTreeMap<String, Vec<Instance>>>>,
}

impl LaunchGuard {
    /// Originals in the order the cycle will reach them.
    pub(crate) fn new(aws: &Aws, originals: Vec<String>) -> Self {
        let mut batch_of = BTreeMap::new();
        let batches: Vec<GuardBatch> = originals
            .chunks(crate::snapshot::FILTER_VALUES)
            .enumerate()
            .map(|(i, chunk)| {
                for o in chunk {
                    batch_of.entry(o.clone()).or_insert(i);
                }
                GuardBatch {
                    originals: chunk.to_vec(),
                    found: tokio::sync::OnceCell::new(),
                }
            })
            .collect();
        Self {
            aws: aws.clone(),
            batch_of: Arc::new(batch_of),
            batches: batches.into(),
        }
    }

    /// Read every batch, in order, in a task of its own; abort it when the cycle is done.
    pub(crate) fn prefetch(&self) -> tokio::task::JoinHandle<()> {
        let guard = self.clone();
        tokio::spawn(async move {
            for i in 0..guard.batches.len() {
                guard.batch(i).await;
            }
        })
    }

    async fn batch(&self, i: usize) -> Option<&BTreeMap<String, Vec<Instance>>> {
        let b = &self.batches[i];
        b.found
            .get_or_init(|| async {
                match crate::snapshot::launches_replacing(&self.aws, &b.originals).await {
                    Ok(found) => Some(found),
                    Err(e) => {
                        tracing::warn!(reason = "LaunchLookupFailed", error = %e, originals = b.originals.len(), "batched launch look-up failed; each launch of the batch reads its own");
                        None
                    }
                }
            })
            .await
            .as_ref()
    }

    /// Our launches replacing `original`; `None` when it is in no batch or its batch's read
    /// failed.
    pub(crate) async fn launches_replacing(&self, original: &str) -> Option<Vec<Instance>> {
        let i = *self.batch_of.get(original)?;
        self.batch(i)
            .await
            .map(|found| found.get(original).cloned().unwrap_or_default())
    }
}

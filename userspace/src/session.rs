//! Where every operation starts: the instance's state, locked for the operation, with any mutation a killed command
//! left half-done finished or undone, and checked against the pinned datapath and the host's devices (`check.rs`).
//! A mutation is recorded in the state (`Pending`) before it touches the host and forgotten once it is complete, so
//! that kill -9 at any point leaves something the next command can finish or undo.
use crate::{
    check::{self, Finding},
    driver::{self, port},
    error::{Error, Result},
    instance::Instance,
    model::{Network, Pending, State},
    store::StateStore,
};

pub struct Session<'a> {
    pub instance: &'a Instance,
    store: StateStore,
    pub state: State,
    /// What opening finished or undid for a command that did not complete.
    pub recovered: Vec<Pending>,
}

impl<'a> Session<'a> {
    /// Opens the state and refuses to go on when it and the datapath disagree.
    pub async fn open(instance: &'a Instance) -> Result<Self> {
        let session = Self::open_unchecked(instance).await?;
        let findings = check::examine(instance, &session.state).await?;
        if let Some(first) = findings.first() {
            return Err(Error::Inconsistent { first: Box::new(first.clone()), more: findings.len() - 1 });
        }
        Ok(session)
    }

    /// Opens the state without comparing it with the datapath: for the doctor, and for deletions, which must work on
    /// a broken instance too.
    pub async fn open_unchecked(instance: &'a Instance) -> Result<Self> {
        let store = instance.store()?;
        let mut state = store.load()?;
        let recovered = recover(instance, &mut state).await?;
        if !recovered.is_empty() {
            store.save(&state)?;
        }
        Ok(Session { instance, store, state, recovered })
    }

    pub fn save(&self) -> Result<()> {
        self.store.save(&self.state)
    }

    /// Records a mutation before it touches anything.
    pub fn begin(&mut self, pending: Pending) -> Result<()> {
        self.state.pending.push(pending);
        self.save()
    }

    /// The mutation is complete (or rolled back): forgets it and saves the state as it is now.
    pub fn end(&mut self) -> Result<()> {
        self.state.pending.clear();
        self.save()
    }

    /// The findings of the check, for the doctor.
    pub async fn examine(&self) -> Result<Vec<Finding>> {
        check::examine(self.instance, &self.state).await
    }
}

/// Finishes or undoes the mutations a killed command recorded; returns them.
async fn recover(instance: &Instance, state: &mut State) -> Result<Vec<Pending>> {
    let pending = std::mem::take(&mut state.pending);
    for mutation in &pending {
        match mutation {
            Pending::CreateNetwork { network } => {
                state.networks.retain(|n| n.name != network.name);
                driver::teardown_network(instance, state, network).await?;
            }
            Pending::AddEndpoint { network, endpoint, names } => {
                if let Some(made) = state.networks.iter().find(|n| n.name == *network) {
                    let others = made.endpoints.iter().filter(|e| e.at != endpoint.at).cloned().collect();
                    let made = Network { endpoints: others, ..made.clone() };
                    port::undo_add(instance, &made, endpoint, names).await?;
                }
            }
            Pending::DeleteEndpoint { network, endpoint } => port::teardown(instance, network, endpoint).await?,
            Pending::DeleteNetwork { network } => delete_network(instance, state, network).await?,
        }
    }
    Ok(pending)
}

/// Removes a network that `state` no longer holds, endpoints first.
pub async fn delete_network(instance: &Instance, state: &State, network: &Network) -> Result<()> {
    let mut remaining = network.clone();
    while let Some(endpoint) = remaining.endpoints.pop() {
        port::teardown_in_going_network(instance, &remaining, &endpoint).await?;
    }
    driver::teardown_network(instance, state, &remaining).await
}

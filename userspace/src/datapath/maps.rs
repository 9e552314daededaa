//! Typed access to an instance's pinned maps. Each call opens the pin it needs, so commands that only read
//! (stats, show) never create anything.
use aya::maps::{
    lpm_trie::{Key, LpmTrie},
    Array, DevMapHash, HashMap, IterableMap, Map, MapData, MapError, PerCpuArray, PerCpuValues,
};
use datapath_common::{
    map_names, EndpointConfig, EndpointStats, FdbEntry, FloodList, GroupKey, GroupMembers, IpEndpoint, IpKey, MacKey,
    NetworkConfig, ParentConfig, ParentKey, SpreaderConfig, VniKey, VtepList, VtepMac, DROP_REASONS, STATS_SLOTS,
    USER_GENERATION,
};

use std::os::fd::AsFd;

use crate::{
    datapath::{
        batch,
        pins::{unpin, PinDir},
    },
    error::{Error, Result},
};

/// A map key whose first part is a network.
trait OfNetwork {
    fn network_id(&self) -> u32;
}

impl OfNetwork for MacKey {
    fn network_id(&self) -> u32 {
        self.network_id
    }
}

impl OfNetwork for GroupKey {
    fn network_id(&self) -> u32 {
        self.network_id
    }
}

pub struct Tables<'a> {
    pins: &'a PinDir,
}

fn map_error(name: &str, error: impl Into<crate::error::Source>) -> Error {
    Error::bpf(format!("map {name}"), error)
}

/// A removal of a key that is not there is not an error: teardown runs after partial setups too.
fn ignore_missing(result: Result<(), MapError>, name: &str) -> Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(MapError::KeyNotFound) => Ok(()),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(map_error(name, e)),
    }
}

impl<'a> Tables<'a> {
    pub fn new(pins: &'a PinDir) -> Self {
        Self { pins }
    }

    /// True once the instance's maps exist (the first network created them).
    pub fn exist(&self) -> bool {
        self.pins.map(map_names::NETWORKS).exists()
    }

    fn open(&self, name: &str) -> Result<Map> {
        let data = MapData::from_pin(self.pins.map(name)).map_err(|e| map_error(name, e))?;
        Map::from_map_data(data).map_err(|e| map_error(name, e))
    }

    fn hash<K: aya::Pod, V: aya::Pod>(&self, name: &str) -> Result<HashMap<MapData, K, V>> {
        HashMap::try_from(self.open(name)?).map_err(|e| map_error(name, e))
    }

    fn array<V: aya::Pod>(&self, name: &str) -> Result<Array<MapData, V>> {
        Array::try_from(self.open(name)?).map_err(|e| map_error(name, e))
    }

    /// Each index of the per-CPU counter array `name`, summed over CPUs; zeros where the map is not pinned (an
    /// instance an older xlan made and nobody upgraded).
    fn per_cpu_sums<const N: usize>(&self, name: &str) -> Result<[u64; N]> {
        let mut total = [0u64; N];
        if !self.pins.map(name).exists() {
            return Ok(total);
        }
        let counts: PerCpuArray<MapData, u64> =
            PerCpuArray::try_from(self.open(name)?).map_err(|e| map_error(name, e))?;
        for (index, sum) in total.iter_mut().enumerate() {
            *sum = counts.get(&(index as u32), 0).map_err(|e| map_error(name, e))?.iter().sum();
        }
        Ok(total)
    }

    fn put<K: aya::Pod, V: aya::Pod>(&self, name: &str, key: K, value: V) -> Result<()> {
        let written = self.hash::<K, V>(name)?.insert(key, value, 0).map_err(|e| map_error(name, e));
        self.changed(name, written)
    }

    fn delete<K: aya::Pod, V: aya::Pod>(&self, name: &str, key: K) -> Result<()> {
        if !self.exist() {
            return Ok(());
        }
        let removed = ignore_missing(self.hash::<K, V>(name)?.remove(&key), name);
        self.changed(name, removed)
    }

    /// After a write to map `name` (`written`, whatever its result: a batch may have done part of its work before it
    /// failed): when the datapath keeps per-CPU copies of that map's entries (`map_names::CACHED`), changes the user
    /// generation, under which alone those copies are good. xlan's commands change an instance one at a time (its
    /// state lock), so reading and writing it back is no race.
    fn changed(&self, name: &str, written: Result<()>) -> Result<()> {
        if !map_names::CACHED.contains(&name) || !self.exist() {
            return written;
        }
        self.bump_generation()?;
        written
    }

    fn bump_generation(&self) -> Result<()> {
        let name = map_names::GENERATION;
        let mut generation = self.array::<u64>(name)?;
        let current = generation.get(&USER_GENERATION, 0).map_err(|e| map_error(name, e))?;
        generation.set(USER_GENERATION, current.wrapping_add(1), 0).map_err(|e| map_error(name, e))
    }

    pub fn put_network(&self, id: u32, config: NetworkConfig) -> Result<()> {
        self.put(map_names::NETWORKS, id, config)
    }
    pub fn delete_network(&self, id: u32) -> Result<()> {
        self.delete::<u32, NetworkConfig>(map_names::NETWORKS, id)
    }
    pub fn put_parent(&self, key: ParentKey, config: ParentConfig) -> Result<()> {
        self.put(map_names::PARENTS, key, config)
    }
    pub fn delete_parent(&self, key: ParentKey) -> Result<()> {
        self.delete::<ParentKey, ParentConfig>(map_names::PARENTS, key)
    }
    pub fn put_vni(&self, key: VniKey, network_id: u32) -> Result<()> {
        self.put(map_names::VNIS, key, network_id)
    }
    pub fn delete_vni(&self, key: VniKey) -> Result<()> {
        self.delete::<VniKey, u32>(map_names::VNIS, key)
    }
    pub fn put_vteps(&self, network_id: u32, list: VtepList) -> Result<()> {
        self.put(map_names::VTEPS, network_id, list)
    }
    pub fn delete_vteps(&self, network_id: u32) -> Result<()> {
        self.delete::<u32, VtepList>(map_names::VTEPS, network_id)
    }

    fn ip_endpoints(&self) -> Result<LpmTrie<MapData, IpKey, IpEndpoint>> {
        let name = map_names::IP_ENDPOINTS;
        LpmTrie::try_from(self.open(name)?).map_err(|e| map_error(name, e))
    }
    pub fn put_ip(&self, key: Key<IpKey>, endpoint: IpEndpoint) -> Result<()> {
        let name = map_names::IP_ENDPOINTS;
        self.changed(name, self.ip_endpoints()?.insert(&key, endpoint, 0).map_err(|e| map_error(name, e)))
    }
    pub fn delete_ip(&self, key: Key<IpKey>) -> Result<()> {
        if !self.exist() {
            return Ok(());
        }
        let name = map_names::IP_ENDPOINTS;
        self.changed(name, ignore_missing(self.ip_endpoints()?.remove(&key), name))
    }

    pub fn put_vtep_mac(&self, ip: u32, mac: [u8; 6]) -> Result<()> {
        self.put(map_names::VTEP_MACS, ip, VtepMac { mac, _pad: [0; 2] })
    }
    /// The MAC the datapath has for a VTEP, if any.
    pub fn vtep_mac(&self, ip: u32) -> Result<Option<[u8; 6]>> {
        Ok(self.get::<u32, VtepMac>(map_names::VTEP_MACS, ip)?.map(|value| value.mac))
    }

    /// The value of `key` in a hash map, if it is there.
    fn get<K: aya::Pod, V: aya::Pod>(&self, name: &str, key: K) -> Result<Option<V>> {
        match self.hash::<K, V>(name)?.get(&key, 0) {
            Ok(value) => Ok(Some(value)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(map_error(name, e)),
        }
    }

    pub fn fdb_entry(&self, key: MacKey) -> Result<Option<FdbEntry>> {
        self.get(map_names::FDB, key)
    }

    pub fn has_source_mac(&self, key: MacKey) -> Result<bool> {
        Ok(self.get::<MacKey, u32>(map_names::SOURCE_MACS, key)?.is_some())
    }

    /// The VTEPs a network floods to.
    pub fn vteps(&self, network_id: u32) -> Result<Option<VtepList>> {
        self.get(map_names::VTEPS, network_id)
    }

    /// The owner of exactly this prefix in the ipvlan trie (not a longer or shorter one's).
    pub fn ip_owner(&self, key: &Key<IpKey>) -> Result<Option<IpEndpoint>> {
        let entries = self.ip_entries()?;
        let same = |k: &Key<IpKey>| k.prefix_len() == key.prefix_len() && k.data() == key.data();
        Ok(entries.into_iter().find(|(k, _)| same(k)).map(|(_, owner)| owner))
    }
    pub fn delete_vtep_mac(&self, ip: u32) -> Result<()> {
        self.delete::<u32, VtepMac>(map_names::VTEP_MACS, ip)
    }

    /// Every FDB entry of the network, static and learned: the whole FDB read in batches (it may hold a million
    /// entries), those of other networks left out.
    pub fn fdb_entries(&self, network_id: u32) -> Result<Vec<(MacKey, FdbEntry)>> {
        self.network_entries(map_names::FDB, network_id)
    }
    /// Deletes every FDB entry of the network, static and learned, by batches (it may hold a million).
    pub fn delete_network_fdb(&self, network_id: u32) -> Result<()> {
        self.delete_network_entries::<MacKey, FdbEntry>(map_names::FDB, network_id)
    }

    /// The multicast groups endpoints of the network joined, with their members (slots no endpoint has any more
    /// among them: `GroupMembers`).
    pub fn groups(&self, network_id: u32) -> Result<Vec<(GroupKey, GroupMembers)>> {
        self.network_entries(map_names::GROUPS, network_id)
    }

    /// Every network's multicast groups.
    pub fn all_groups(&self) -> Result<Vec<(GroupKey, GroupMembers)>> {
        self.entries(map_names::GROUPS)
    }

    /// Deletes the network's multicast groups: with its last endpoint gone, nothing reports into them meanwhile.
    pub fn delete_network_groups(&self, network_id: u32) -> Result<()> {
        self.delete_network_entries::<GroupKey, GroupMembers>(map_names::GROUPS, network_id)
    }

    /// The entries of hash map `name` (keyed by network and more) of network `network_id`.
    fn network_entries<K: aya::Pod + OfNetwork, V: aya::Pod>(
        &self,
        name: &str,
        network_id: u32,
    ) -> Result<Vec<(K, V)>> {
        let mut entries = self.entries::<K, V>(name)?;
        entries.retain(|(key, _)| key.network_id() == network_id);
        Ok(entries)
    }

    /// Deletes network `network_id`'s entries of hash map `name`, by batches.
    fn delete_network_entries<K: aya::Pod + Sync + OfNetwork, V: aya::Pod>(
        &self,
        name: &str,
        network_id: u32,
    ) -> Result<()> {
        // An instance from before map `name` (until `xlan upgrade` makes it) has nothing of it to delete.
        if !self.exist() || !self.pins.map(name).exists() {
            return Ok(());
        }
        let keys: Vec<K> = self.network_entries::<K, V>(name, network_id)?.into_iter().map(|(key, _)| key).collect();
        self.delete_keys::<K, V>(name, &keys)
    }

    /// Deletes `keys` from hash map `name`, by batches.
    fn delete_keys<K: aya::Pod + Sync, V: aya::Pod>(&self, name: &str, keys: &[K]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let map = self.hash::<K, V>(name)?;
        self.changed(name, batch::delete(map.map().fd().as_fd(), keys).map_err(|e| map_error(name, e)))
    }

    /// Every entry of a hash map, read in batches (a map of thousands of endpoints is a few system calls, not one
    /// per key); the map's types checked as for any other access.
    fn entries<K: aya::Pod, V: aya::Pod>(&self, name: &str) -> Result<Vec<(K, V)>> {
        let map = self.hash::<K, V>(name)?;
        batch::entries::<K, V>(map.map().fd().as_fd()).map_err(|e| map_error(name, e))
    }

    /// The networks the datapath knows, by id.
    pub fn networks(&self) -> Result<Vec<(u32, NetworkConfig)>> {
        self.entries(map_names::NETWORKS)
    }

    /// The endpoints the datapath knows, by port.
    pub fn endpoints(&self) -> Result<Vec<(u32, EndpointConfig)>> {
        self.entries(map_names::ENDPOINTS)
    }

    /// The parents the datapath knows, by ifindex and VLAN.
    pub fn parents(&self) -> Result<Vec<(ParentKey, ParentConfig)>> {
        self.entries(map_names::PARENTS)
    }

    /// The VNIs the datapath knows, with their network ids.
    pub fn vnis(&self) -> Result<Vec<(VniKey, u32)>> {
        self.entries(map_names::VNIS)
    }

    /// The allowed source MACs of every network.
    pub fn source_macs(&self) -> Result<Vec<MacKey>> {
        Ok(self.entries::<MacKey, u32>(map_names::SOURCE_MACS)?.into_iter().map(|(key, _)| key).collect())
    }

    /// The ipvlan trie's keys and owners.
    pub fn ip_entries(&self) -> Result<Vec<(Key<IpKey>, IpEndpoint)>> {
        self.ip_endpoints()?.iter().map(|item| item.map_err(|e| map_error(map_names::IP_ENDPOINTS, e))).collect()
    }
    pub fn put_endpoint(&self, port: u32, config: EndpointConfig) -> Result<()> {
        self.put(map_names::ENDPOINTS, port, config)
    }
    pub fn delete_endpoint(&self, port: u32) -> Result<()> {
        self.delete::<u32, EndpointConfig>(map_names::ENDPOINTS, port)
    }
    /// The datapath's entry of the endpoint whose port is `port`, if it has one.
    pub fn endpoint(&self, port: u32) -> Result<Option<EndpointConfig>> {
        match self.hash::<u32, EndpointConfig>(map_names::ENDPOINTS)?.get(&port, 0) {
            Ok(config) => Ok(Some(config)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(map_error(map_names::ENDPOINTS, e)),
        }
    }
    /// The counters' slots of the endpoints whose ports are `ports` (0, nobody's, for a port that is no endpoint), the
    /// map opened once: a flood list is rebuilt from thousands of them at every `endpoint add`.
    pub fn slots(&self, ports: &[u32]) -> Result<Vec<u32>> {
        let endpoints = self.hash::<u32, EndpointConfig>(map_names::ENDPOINTS)?;
        ports
            .iter()
            .map(|port| match endpoints.get(port, 0) {
                Ok(config) => Ok(config.slot),
                Err(MapError::KeyNotFound) => Ok(0),
                Err(e) => Err(map_error(map_names::ENDPOINTS, e)),
            })
            .collect()
    }
    /// The lowest counters slot no endpoint holds (slot 0 is nobody's): a new endpoint's. There is one for every
    /// entry `XLAN_ENDPOINT_SLOTS` has room for, so none is left only when that map is full.
    pub fn free_slot(&self) -> Result<u32> {
        let mut taken = vec![false; STATS_SLOTS as usize];
        for (_, config) in self.endpoints()? {
            if let Some(slot) = taken.get_mut(config.slot as usize) {
                *slot = true;
            }
        }
        let full = || map_error(map_names::ENDPOINTS, std::io::Error::from_raw_os_error(libc::E2BIG));
        (1..STATS_SLOTS).find(|slot| !taken[*slot as usize]).ok_or_else(full)
    }
    pub fn put_fdb(&self, key: MacKey, entry: FdbEntry) -> Result<()> {
        self.put(map_names::FDB, key, entry)
    }
    pub fn delete_fdb(&self, key: MacKey) -> Result<()> {
        self.delete::<MacKey, FdbEntry>(map_names::FDB, key)
    }
    pub fn put_flood(&self, network_id: u32, list: FloodList) -> Result<()> {
        self.put(map_names::FLOOD, network_id, list)
    }
    pub fn delete_flood(&self, network_id: u32) -> Result<()> {
        self.delete::<u32, FloodList>(map_names::FLOOD, network_id)
    }
    pub fn put_source_mac(&self, key: MacKey) -> Result<()> {
        self.put(map_names::SOURCE_MACS, key, 1u32)
    }
    pub fn delete_source_mac(&self, key: MacKey) -> Result<()> {
        self.delete::<MacKey, u32>(map_names::SOURCE_MACS, key)
    }

    /// Makes `port` a target XDP may redirect to.
    pub fn put_port(&self, port: u32) -> Result<()> {
        let name = map_names::PORTS;
        let mut ports = DevMapHash::try_from(self.open(name)?).map_err(|e| map_error(name, e))?;
        ports.insert(port, port, None, 0).map_err(|e| map_error(name, e))
    }
    pub fn delete_port(&self, port: u32) -> Result<()> {
        let name = map_names::PORTS;
        if !self.exist() {
            return Ok(());
        }
        let mut ports = DevMapHash::try_from(self.open(name)?).map_err(|e| map_error(name, e))?;
        ignore_missing(ports.remove(port), name)
    }

    fn stats_map(&self) -> Result<PerCpuArray<MapData, EndpointStats>> {
        let name = map_names::ENDPOINT_STATS;
        PerCpuArray::try_from(self.open(name)?).map_err(|e| map_error(name, e))
    }

    /// Starts the counters of the endpoint whose port is `port` at zero: its slot may have counted for an endpoint
    /// before it. A port that is no endpoint has no counters.
    pub fn reset_stats(&self, port: u32) -> Result<()> {
        let Some(endpoint) = self.endpoint(port)? else { return Ok(()) };
        let cpus = aya::util::nr_cpus().map_err(|(what, e)| Error::io(what, e))?;
        let zeros =
            PerCpuValues::try_from(vec![EndpointStats::default(); cpus]).map_err(|e| Error::io("per-CPU values", e))?;
        self.stats_map()?.set(endpoint.slot, zeros, 0).map_err(|e| map_error(map_names::ENDPOINT_STATS, e))
    }

    /// The counters of the endpoint whose port is `port`, summed over CPUs (all zero for a port that is no
    /// endpoint).
    pub fn stats(&self, port: u32) -> Result<EndpointStats> {
        let mut total = EndpointStats::default();
        let Some(endpoint) = self.endpoint(port)? else { return Ok(total) };
        let per_cpu = self.stats_map()?.get(&endpoint.slot, 0).map_err(|e| map_error(map_names::ENDPOINT_STATS, e))?;
        for cpu in per_cpu.iter() {
            total.rx_packets += cpu.rx_packets;
            total.rx_bytes += cpu.rx_bytes;
            total.tx_packets += cpu.tx_packets;
            total.tx_bytes += cpu.tx_bytes;
            for (sum, count) in total.drops.iter_mut().zip(cpu.drops.iter()) {
                *sum += count;
            }
        }
        Ok(total)
    }

    /// Drops per reason that no endpoint sent, summed over CPUs.
    pub fn drops(&self) -> Result<[u64; DROP_REASONS]> {
        self.per_cpu_sums(map_names::DROPS)
    }

    /// Where the datapath hands broadcast copies to other CPUs (`SpreaderConfig::default()`: nowhere, or no maps).
    pub fn spreader(&self) -> Result<SpreaderConfig> {
        let name = map_names::SPREADER;
        if !self.pins.map(name).exists() {
            return Ok(SpreaderConfig::default());
        }
        self.array::<SpreaderConfig>(name)?.get(&0, 0).map_err(|e| map_error(name, e))
    }
    pub fn put_spreader(&self, config: SpreaderConfig) -> Result<()> {
        let name = map_names::SPREADER;
        self.array::<SpreaderConfig>(name)?.set(0, config, 0).map_err(|e| map_error(name, e))
    }

    /// The floods' counters (`flood_counter`), summed over CPUs.
    pub fn flood_counts(&self) -> Result<[u64; datapath_common::flood_counter::COUNT as usize]> {
        self.per_cpu_sums(map_names::FLOOD_COUNTS)
    }

    /// Removes every map pin of the instance (its last network is gone), an older xlan's too, and the shared
    /// programs' pins, which would hold the maps.
    pub fn unpin_all(&self) -> Result<()> {
        self.pins.unpin_programs()?;
        for (_, path) in self.pins.map_pins()? {
            unpin(&path)?;
        }
        Ok(())
    }
}

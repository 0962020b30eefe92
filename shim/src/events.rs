//! Task events to containerd.
//!
//! containerd-shim's RemotePublisher names each event by asking protobuf
//! for its descriptor. The first such call builds the reflection tables of
//! events/task.proto and of every file it imports, descriptor.proto
//! included: ~360 KB of heap the shim then keeps for its whole life, a
//! third of an idle shim's heap. The names are fixed strings, so events go
//! out here in the same envelope, named from a constant (checked against
//! the descriptors in the tests).

use containerd_shim::protos::events::task::{
    TaskCheckpointed, TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::{well_known_types::any::Any, well_known_types::timestamp::Timestamp, Message};
use containerd_shim::protos::shim::{event::Envelope, events::ForwardRequest};
use containerd_shim::protos::{ttrpc, Client, EventsClient};

/// A task event and the name containerd's type registry knows it by.
pub trait Event: Message {
    const FULL_NAME: &'static str;
}

macro_rules! events {
    ($($t:ident),*) => {$(
        impl Event for $t {
            const FULL_NAME: &'static str = concat!("containerd.events.", stringify!($t));
        }
    )*};
}

events!(TaskCreate, TaskStart, TaskDelete, TaskIO, TaskExit, TaskOOM, TaskExecAdded, TaskExecStarted, TaskPaused, TaskResumed, TaskCheckpointed);

/// An event serialised for the wire, with its topic.
pub struct Packed {
    topic: &'static str,
    any: Any,
}

pub fn pack<E: Event>(topic: &'static str, ev: &E) -> Packed {
    // Serialising a generated message into a Vec cannot fail: the only
    // errors are for messages over 2 GiB.
    let value = ev.write_to_bytes().unwrap_or_default();
    Packed { topic, any: Any { type_url: E::FULL_NAME.into(), value, ..Default::default() } }
}

pub struct Publisher {
    client: EventsClient,
}

impl Publisher {
    /// Connect to containerd's ttrpc socket (`TTRPC_ADDRESS`).
    pub fn connect(address: &str) -> Result<Publisher, containerd_shim::Error> {
        let fd = containerd_shim::util::connect(address)?;
        let client = Client::new(fd).map_err(containerd_shim::Error::from)?;
        Ok(Publisher { client: EventsClient::new(client) })
    }

    pub fn publish(&self, namespace: &str, ev: Packed) -> ttrpc::Result<()> {
        let req = ForwardRequest {
            envelope: Some(Envelope {
                timestamp: Some(Timestamp::now()).into(),
                namespace: namespace.into(),
                topic: ev.topic.into(),
                event: Some(ev.any).into(),
                ..Default::default()
            })
            .into(),
            ..Default::default()
        };
        self.client.forward(ttrpc::context::Context::default(), &req).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::protobuf::MessageFull;

    fn named_as_protobuf_does<E: Event + MessageFull + Default>() {
        assert_eq!(E::FULL_NAME, E::descriptor().full_name());
    }

    #[test]
    fn names_are_the_descriptors_full_names() {
        named_as_protobuf_does::<TaskCreate>();
        named_as_protobuf_does::<TaskStart>();
        named_as_protobuf_does::<TaskDelete>();
        named_as_protobuf_does::<TaskIO>();
        named_as_protobuf_does::<TaskExit>();
        named_as_protobuf_does::<TaskOOM>();
        named_as_protobuf_does::<TaskExecAdded>();
        named_as_protobuf_does::<TaskExecStarted>();
        named_as_protobuf_does::<TaskPaused>();
        named_as_protobuf_does::<TaskResumed>();
        named_as_protobuf_does::<TaskCheckpointed>();
    }

    #[test]
    fn packed_event_decodes_back() {
        let ev = TaskExit { container_id: "c1".into(), pid: 42, exit_status: 3, ..Default::default() };
        let p = pack("/tasks/exit", &ev);
        assert_eq!(p.topic, "/tasks/exit");
        assert_eq!(p.any.type_url, "containerd.events.TaskExit");
        assert_eq!(TaskExit::parse_from_bytes(&p.any.value).unwrap(), ev);
    }
}

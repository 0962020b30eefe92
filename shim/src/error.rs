//! Shim errors and their mapping onto the gRPC codes containerd
//! understands (NotFound, AlreadyExists, FailedPrecondition, ...).

use containerd_shim::protos::ttrpc::{self, Code};
use husk::container::ContainerError;
use husk::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Unimplemented(String),
    #[error(transparent)]
    Husk(#[from] ContainerError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: {1}")]
    Sys(String, nix::Error),
    #[error("mounting the rootfs: {0}")]
    Mount(String),
}

pub type Result<T> = std::result::Result<T, ShimError>;

impl ShimError {
    fn code(&self) -> Code {
        match self {
            ShimError::NotFound(_) => Code::NOT_FOUND,
            ShimError::AlreadyExists(_) => Code::ALREADY_EXISTS,
            ShimError::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            ShimError::InvalidArgument(_) => Code::INVALID_ARGUMENT,
            ShimError::Unimplemented(_) => Code::UNIMPLEMENTED,
            ShimError::Husk(ContainerError::State(StateError::NotFound)) => Code::NOT_FOUND,
            ShimError::Husk(ContainerError::State(StateError::Exists(_))) => Code::ALREADY_EXISTS,
            ShimError::Husk(ContainerError::State(StateError::InvalidId(_))) => Code::INVALID_ARGUMENT,
            ShimError::Husk(ContainerError::BadStatus { .. }) => Code::FAILED_PRECONDITION,
            ShimError::Husk(ContainerError::Usage(_)) => Code::INVALID_ARGUMENT,
            _ => Code::UNKNOWN,
        }
    }
}

impl From<ShimError> for ttrpc::Error {
    fn from(e: ShimError) -> ttrpc::Error {
        ttrpc::Error::RpcStatus(ttrpc::get_status(e.code(), e.to_string()))
    }
}

pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ShimError {
    let what = what.into();
    move |e| ShimError::Io(what, e)
}

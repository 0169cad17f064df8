//! The forkserver's control socket: a `SOCK_SEQPACKET` socketpair (message boundaries kept, no
//! framing of our own), postcard messages of at most [`MAX_MESSAGE`] bytes, and up to
//! [`MAX_FDS`] fds beside each message (`SCM_RIGHTS`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

use crate::fnid::FnId;

/// Largest message on the socket (a launch request carries a boot payload of ~100 bytes).
pub(crate) const MAX_MESSAGE: usize = 64 << 10;
/// Most fds passed with one message (a worker's link and the pool's counters).
pub(crate) const MAX_FDS: usize = 4;

/// Parent → server.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Fork a worker that runs `entry` with the fds passed beside this message.
    Launch {
        request: u64,
        entry: FnId,
        worker_id: u64,
        payload: Vec<u8>,
    },
}

/// Server → parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The worker of `request` runs as `pid`; its pidfd is passed beside this message.
    Launched { request: u64, pid: i32 },
    /// The worker of `request` could not be started.
    Refused { request: u64, error: String },
    /// The server reaped `pid`; `status` is what `waitpid` said.
    Exited { pid: i32, status: i32 },
}

/// A connected pair: (parent's end, server's end), both close-on-exec.
pub(crate) fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two fds into a valid array of two.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two fresh fds that we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Space for the control message of `MAX_FDS` fds, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct CmsgBuf([u8; 64]);

/// Sends `msg` with `fds`. Never raises SIGPIPE (`MSG_NOSIGNAL`); a gone peer is `EPIPE`.
pub(crate) fn send<T: Serialize>(
    sock: BorrowedFd<'_>,
    msg: &T,
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    assert!(fds.len() <= MAX_FDS);
    let bytes = postcard::to_stdvec(msg).map_err(io::Error::other)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "forkserver message too large",
        ));
    }
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let mut cmsg = CmsgBuf([0; 64]);
    // SAFETY: a zeroed msghdr is a valid empty one.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    if !fds.is_empty() {
        let data_len = std::mem::size_of_val(fds) as u32;
        // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic; the buffer holds MAX_FDS fds
        // (checked by the assert above and the size check below); CMSG_FIRSTHDR points into
        // it and the fd array is copied within CMSG_DATA's `data_len` bytes.
        unsafe {
            let space = libc::CMSG_SPACE(data_len) as usize;
            assert!(space <= cmsg.0.len());
            hdr.msg_control = cmsg.0.as_mut_ptr().cast();
            hdr.msg_controllen = space;
            let c = libc::CMSG_FIRSTHDR(&hdr);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(data_len) as usize;
            let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
            std::ptr::copy_nonoverlapping(
                raw.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(c),
                data_len as usize,
            );
        }
    }
    loop {
        // SAFETY: `hdr` points to live buffers for the duration of the call.
        let r = unsafe { libc::sendmsg(sock.as_raw_fd(), &hdr, libc::MSG_NOSIGNAL) };
        if r >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Receives one message and the fds beside it; `None` when the peer closed its end.
/// Received fds are close-on-exec.
pub(crate) fn recv<T: for<'de> Deserialize<'de>>(
    sock: BorrowedFd<'_>,
) -> io::Result<Option<(T, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cmsg = CmsgBuf([0; 64]);
    // SAFETY: a zeroed msghdr is a valid empty one.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = cmsg.0.as_mut_ptr().cast();
    hdr.msg_controllen = cmsg.0.len();
    let n = loop {
        // SAFETY: `hdr` points to live buffers for the duration of the call.
        let r = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut hdr, libc::MSG_CMSG_CLOEXEC) };
        if r >= 0 {
            break r as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut fds = Vec::new();
    // SAFETY: the kernel filled `hdr.msg_control` with well-formed control messages of
    // `msg_controllen` bytes; every fd of an SCM_RIGHTS message is new and ours.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&hdr);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let len = (*c).cmsg_len - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(c);
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = data
                        .add(i * std::mem::size_of::<RawFd>())
                        .cast::<RawFd>()
                        .read_unaligned();
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            c = libc::CMSG_NXTHDR(&hdr, c);
        }
    }
    if n == 0 && fds.is_empty() {
        return Ok(None);
    }
    if hdr.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "forkserver message truncated",
        ));
    }
    let msg = postcard::from_bytes(&buf[..n])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Some((msg, fds)))
}

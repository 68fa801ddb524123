/**
 * gRPC over HTTP/2, shared by every gRPC engine: the front door (the listener that proves who
 * calls and hands the engine only calls with an identity), length-prefixed message framing,
 * gRPC statuses for meshgate's error kinds, and a call's outcome as facts for the audit recorder.
 */
export { DEFAULT_FRONT_DOOR_TIMEOUTS, GrpcFrontDoor, type FrontDoorTimeouts, type FrontDoorTls, type GrpcCall, type GrpcFrontDoorOptions, type GrpcPeer, type RefusedCall, type RefusedConnection } from './front-door.ts';
export { encodeGrpcMessage, GrpcMessageReader, type GrpcMessage } from './frames.ts';
export { encodeStatusMessage, GrpcStatus, refuseCall } from './status.ts';
export { rpcFacts, traceOf, type CallTrace, type RpcOutcome } from './rpc-facts.ts';

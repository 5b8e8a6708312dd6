export { portmux as default, serverFactory } from './fastify.js'
export { createServer } from './node.js'
export { MuxServer, decisionChannel, refusalChannel } from './core/server.js'
export { devCertificate } from './dev-certificate.js'
export { proxyHeaderOf } from './peer.js'
export type { HasSocket } from './peer.js'
export type { ProxyAddress, ProxyHeader, ProxySslInfo, ProxyTlv, ProxyTlvs } from './sniff/proxy-header.js'
export type { DevCertificateOptions, KeyAndCertificate } from './dev-certificate.js'
export {
  PortmuxError,
  InvalidOptionError,
  InvalidRouteError,
  DuplicateRouteError,
  NoFactoryError,
  DevCertificateError,
  MatcherError,
  HandlerError,
  AcmeError
} from './errors.js'
export type { PortmuxErrorCode } from './errors.js'
export type {
  AcmeChallenge,
  AcmeOptions,
  CertificateEvent,
  CloseReason,
  ConnectionInfo,
  Destination,
  HttpMode,
  HttpServerTimeouts,
  Match,
  MuxOptions,
  MuxStats,
  ProtocolName,
  ProxyProtocolOptions,
  ProxyTarget,
  RawHandler,
  RedirectOptions,
  RefusalInfo,
  ProxyOutcome,
  TcpRoute,
  TlsMatch,
  Verdict
} from './types.js'

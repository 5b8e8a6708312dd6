export { portmux as default, portmux, serverFactory } from './fastify.js'
export type { MuxServerFactory } from './fastify.js'
export { createServer } from './node.js'
export { MuxServer, decisionChannel, refusalChannel } from './server.js'
export type { MuxLogger } from './server.js'
export type { MuxEventName, MuxEvents, MuxListener } from './core/events.js'
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
  CertificateInfo,
  CloseReason,
  ConnectionInfo,
  Destination,
  HandlerRoute,
  HttpMode,
  HttpServerTimeouts,
  Match,
  MuxOptions,
  MuxStats,
  ProtocolName,
  ProxyProtocolOptions,
  ProxyRoute,
  ProxyTarget,
  RawHandler,
  RedirectOptions,
  RefusalInfo,
  ProxyOutcome,
  TcpRoute,
  TcpRouteOptions,
  TlsMatch,
  Verdict
} from './types.js'

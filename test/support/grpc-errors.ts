import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import type { ServiceError } from "@grpc/grpc-js";
import {
  type BadRequest,
  BadRequestSchema,
  type ErrorInfo,
  ErrorInfoSchema,
} from "../../gen/google/rpc/error_details_pb.js";
import { type Status, StatusSchema } from "../../gen/google/rpc/status_pb.js";

/** The rich error a grpc-js client received in the `grpc-status-details-bin` trailer. */
export interface GrpcErrorDetails {
  status?: Status;
  errorInfo?: ErrorInfo;
  badRequest?: BadRequest;
}

/** Decodes the `google.rpc.Status` trailer of a failed grpc-js call and unpacks its ErrorInfo and BadRequest. */
export function readGrpcErrorDetails(error: ServiceError): GrpcErrorDetails {
  const [bytes] = error.metadata?.get("grpc-status-details-bin") ?? [];
  if (!(bytes instanceof Buffer)) return {};
  const status = fromBinary(StatusSchema, bytes);
  const details: GrpcErrorDetails = { status };
  for (const detail of status.details) {
    details.errorInfo ??= anyUnpack(detail, ErrorInfoSchema);
    details.badRequest ??= anyUnpack(detail, BadRequestSchema);
  }
  return details;
}

/**
 * `bench.v1.EchoService/Echo`: one bytes field in, the same message out. Built at run time from a
 * FileDescriptorProto so the benchmark adds nothing to proto/ or gen/ (which buf regenerates).
 */
import { create, createFileRegistry, type DescMessage, type DescService } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";

const file = create(FileDescriptorProtoSchema, {
  name: "bench/v1/echo.proto",
  package: "bench.v1",
  syntax: "proto3",
  messageType: [
    {
      name: "EchoMessage",
      field: [
        {
          name: "payload",
          jsonName: "payload",
          number: 1,
          type: FieldDescriptorProto_Type.BYTES,
          label: FieldDescriptorProto_Label.OPTIONAL,
        },
      ],
    },
  ],
  service: [{ name: "EchoService", method: [{ name: "Echo", inputType: ".bench.v1.EchoMessage", outputType: ".bench.v1.EchoMessage" }] }],
});

const registry = createFileRegistry(file, () => undefined);

export const EchoMessageSchema = registry.getMessage("bench.v1.EchoMessage") as DescMessage;
export const EchoService = registry.getService("bench.v1.EchoService") as DescService;
/** The gRPC path of the one method. */
export const ECHO_PATH = "/bench.v1.EchoService/Echo";

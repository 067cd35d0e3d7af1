/**
 * The ONNX file format through protobufjs and ONNX's own schema (vendor/onnx/onnx.proto,
 * read once): encoding the graphs `export` builds. Only the message shapes used here are
 * typed.
 */
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';

export const ONNX_FLOAT = 1;
/** IR version 8 with opset 17 (LayerNormalization): readable by onnxruntime ≥ 1.12 and onnx ≥ 1.12. */
export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;

export interface TensorProto {
  name: string;
  dims: number[];
  dataType: number;
  rawData: Uint8Array;
}

export interface AttributeProto {
  name: string;
  /** AttributeType: FLOAT 1, INT 2, STRING 3, FLOATS 6, INTS 7, STRINGS 8. */
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  ints?: number[];
  strings?: Uint8Array[];
}

export interface NodeProto {
  name: string;
  opType: string;
  input: string[];
  output: string[];
  attribute: AttributeProto[];
}

export interface Dim {
  dimValue?: number;
  dimParam?: string;
}

export interface ValueInfoProto {
  name: string;
  type: { tensorType: { elemType: number; shape: { dim: Dim[] } } };
}

export interface GraphProto {
  name: string;
  node: NodeProto[];
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
}

export interface ModelProto {
  irVersion: number;
  opsetImport: { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  docString?: string;
  graph: GraphProto;
  metadataProps?: { key: string; value: string }[];
}

let modelType: protobuf.Type | undefined;

function modelProtoType(): protobuf.Type {
  if (modelType === undefined) {
    const schema = readFileSync(new URL('../../../vendor/onnx/onnx.proto', import.meta.url), 'utf8');
    modelType = protobuf.parse(schema, { keepCase: false }).root.lookupType('onnx.ModelProto');
  }
  return modelType;
}

export function encodeModel(model: ModelProto): Uint8Array {
  const type = modelProtoType();
  return type.encode(type.fromObject(model)).finish();
}

"""The cloud platforms, on local emulators and on real accounts: spend guardrails and run ids
(spend), the moto emulator and child servers (emulators), SageMaker's serving contract and
start-up window (sagemaker), the AWS target with its tagged cleanup and sweep (aws), and
Vertex AI's contract, local endpoint, stand-in and target (vertex). Imports every layer
below it, never labkit.course."""
